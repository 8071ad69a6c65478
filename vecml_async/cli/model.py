"""``vecml-async model list|metric|delete``: the AutoML models of a collection."""

from __future__ import annotations

import typer

from vecml_async.cli._common import (
    ApiKey,
    BaseUrl,
    Collection,
    JsonOut,
    Model,
    Project,
    Yes,
    with_client,
)
from vecml_async.cli._output import metric_dict, metric_text, print_done, print_json


def model_list(
    project: Project,
    collection: Collection,
    json_out: JsonOut = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """List the models of a collection."""

    infos = with_client(
        api_key, base_url, lambda client: client.list_automl_model_infos(project, collection)
    )
    if json_out:
        print_json([info.model_dump() for info in infos])
        return
    for info in infos:
        typer.echo(
            f"{info.model_name}\t{info.task_type}\t{info.training_mode}\t"
            f"{info.label_attribute}\t{info.create_time}"
        )


def model_metric(
    project: Project,
    collection: Collection,
    model: Model,
    json_out: JsonOut = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Print a model's validation metric."""

    answer = with_client(
        api_key,
        base_url,
        lambda client: client.get_model_validation_metric(project, collection, model),
    )
    if json_out:
        print_json({"validation_metric": metric_dict(answer.validation_metric)})
    else:
        typer.echo("validation: " + metric_text(answer.validation_metric))


def model_delete(
    project: Project,
    collection: Collection,
    model: Model,
    yes: Yes = False,
    json_out: JsonOut = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Delete a model (irreversible)."""
    if not yes:
        typer.confirm(f"Delete model {model} of {project}/{collection}?", abort=True, err=True)

    with_client(
        api_key, base_url, lambda client: client.delete_automl_model(project, collection, model)
    )
    fields = {"project": project, "collection": collection, "model": model}
    print_done(json_out, f"model {model} deleted", **fields, status="deleted")
