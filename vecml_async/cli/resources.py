"""``vecml-async project create|delete`` and ``collection init``: the containers of data.

Creations take ``--exist-ok`` and deletions ``--missing-ok`` so scripts can re-run them;
deleting asks for confirmation unless ``--yes``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from vecml_async.cli._common import (
    ApiKey,
    BaseUrl,
    Collection,
    JsonOut,
    Project,
    Yes,
    connect,
    run,
    with_client,
)
from vecml_async.cli._output import print_done
from vecml_async.models import VectorType


def project_create(
    name: Project,
    application: Annotated[str, typer.Option(help="Application label.")] = "Machine Learning",
    exist_ok: Annotated[
        bool, typer.Option("--exist-ok", help="An existing project is not an error.")
    ] = False,
    json_out: JsonOut = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Create a project."""

    with_client(
        api_key,
        base_url,
        lambda client: client.create_project(name, application=application, exist_ok=exist_ok),
    )
    print_done(json_out, f"project {name} ready", project=name, status="ready")


def project_delete(
    name: Project,
    missing_ok: Annotated[
        bool, typer.Option("--missing-ok", help="A missing project is not an error.")
    ] = False,
    yes: Yes = False,
    json_out: JsonOut = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Delete a project and everything in it."""
    if not yes:
        typer.confirm(
            f"Delete project {name} and all its collections and models?", abort=True, err=True
        )

    with_client(
        api_key, base_url, lambda client: client.delete_project(name, missing_ok=missing_ok)
    )
    print_done(json_out, f"project {name} deleted", project=name, status="deleted")


def collection_init(
    project: Project,
    collection: Collection,
    dim: Annotated[
        int | None, typer.Option(min=1, help="Vector dimension (needed for dense).")
    ] = None,
    vector_type: Annotated[VectorType, typer.Option("--type", help="Vector type.")] = "dense",
    exist_ok: Annotated[
        bool, typer.Option("--exist-ok", help="An existing collection is not an error.")
    ] = False,
    json_out: JsonOut = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Create an empty collection (dense collections need --dim)."""

    async def go() -> None:
        async with connect(api_key, base_url) as client:
            await client.init(
                project,
                collection,
                vector_type=vector_type,
                vector_dim=dim,
                exist_ok=exist_ok,
            )

    run(go)
    text = f"collection {project}/{collection} ready"
    print_done(json_out, text, project=project, collection=collection, status="ready")
