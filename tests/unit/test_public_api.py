"""The public surface: __all__ sorted and complete, typed package, documented names."""

from __future__ import annotations

import importlib.resources
import inspect
import re
import types

import pytest

import vecml_async
from vecml_async import errors, models


def public_names(module: types.ModuleType) -> set[str]:
    """Names a module binds that do not start with '_' and are not submodules."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }


def test_all_is_sorted_and_unique():
    """vecml_async.__all__ is sorted and has no duplicates."""
    names = vecml_async.__all__
    assert names == sorted(names)
    assert len(names) == len(set(names))


def test_all_is_complete():
    """Every public name the package binds is in __all__, and every entry resolves."""
    exported = set(vecml_async.__all__)
    assert public_names(vecml_async) - {"annotations"} <= exported
    for name in exported:
        assert hasattr(vecml_async, name), name


def test_every_error_is_exported():
    """Every class of the error tree can be imported from the package."""
    assert set(errors.__all__) <= set(vecml_async.__all__)
    for name in errors.__all__:
        assert getattr(vecml_async, name) is getattr(errors, name)


def test_submodule_all_sorted_and_resolvable():
    """errors.__all__ and models.__all__ are sorted and name real objects."""
    for module in (errors, models):
        assert module.__all__ == sorted(module.__all__)
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def _annotation_names(annotation: str) -> set[str]:
    ignored = {"Any", "None", "Sequence", "Mapping", "Collection", "Generator", "Awaitable"}
    return {n for n in re.findall(r"\b[A-Z]\w*", annotation) if n not in ignored}


def test_types_returned_by_the_client_are_exported():
    """Every type a public client or job method returns can be imported from the package."""
    missing = set()
    for cls in (vecml_async.AsyncVecML, vecml_async.UploadJob, vecml_async.TrainingJob):
        for name, member in inspect.getmembers(cls, inspect.isfunction):
            if name.startswith("_"):
                continue
            returned = inspect.signature(member).return_annotation
            if isinstance(returned, str):
                missing |= _annotation_names(returned) - set(vecml_async.__all__)
    missing -= {"StatusT", "Transport"}  # a type variable; the transport is internal plumbing
    assert not missing


def test_py_typed_present():
    """The package ships py.typed (PEP 561), so type checkers use its annotations."""
    assert importlib.resources.files("vecml_async").joinpath("py.typed").is_file()


def test_version():
    """__version__ is a version string."""
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?([ab]|rc|\.dev|\.post)?\d*", vecml_async.__version__)


@pytest.mark.parametrize("name", sorted(set(vecml_async.__all__) - {"__version__"}))
def test_public_names_documented(name):
    """Every exported class and function has a docstring."""
    obj = getattr(vecml_async, name)
    assert inspect.getdoc(obj), name


def test_client_methods_documented():
    """Every public method of AsyncVecML has a docstring."""
    for name, member in inspect.getmembers(vecml_async.AsyncVecML, inspect.isfunction):
        if not name.startswith("_"):
            assert inspect.getdoc(member), name


def test_client_options_are_keyword_only():
    """Only api_key is positional in AsyncVecML(...); every option is keyword-only."""
    params = list(inspect.signature(vecml_async.AsyncVecML).parameters.values())
    assert params[0].name == "api_key"
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:])


@pytest.mark.parametrize(
    "method",
    [
        "create_project",
        "delete_project",
        "init",
        "add_data",
        "add_data_batch",
        "upload",
        "train_automl_model",
        "automl_predict",
    ],
)
def test_endpoint_options_are_keyword_only(method):
    """Endpoint methods take the names positionally and every option by keyword."""
    params = list(inspect.signature(getattr(vecml_async.AsyncVecML, method)).parameters.values())
    positional = [p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    assert all(
        n in {"self", "project_name", "collection_name", "model_name", "vector", "data", "file"}
        for n in positional
    ), positional
