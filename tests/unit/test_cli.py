"""The vecml-async command's parsing, help, output and error handling (HTTP mocked by respx)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import respx
from typer.testing import CliRunner, Result

from vecml_async.cli import ExitCode, app, main, parse_size
from vecml_async.cli._live import resume_command

SECRET = "vml_super_secret_key_do_not_print"

COMMANDS = [
    [],
    ["demo"],
    ["emulator"],
    ["ingest"],
    ["train"],
    ["predict"],
    ["job"],
    ["job", "status"],
    ["job", "wait"],
    ["project"],
    ["project", "create"],
    ["project", "delete"],
    ["collection"],
    ["collection", "init"],
    ["model"],
    ["model", "list"],
    ["model", "metric"],
    ["model", "delete"],
    ["probe"],
]


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, base_url: str) -> None:
    """Every test has a secret key and the mocked base URL in the environment."""
    monkeypatch.setenv("VECML_API_KEY", SECRET)
    monkeypatch.setenv("VECML_BASE_URL", base_url)


@pytest.fixture
def api(base_url: str) -> Iterator[respx.MockRouter]:
    """A mocked VecML server; unmatched requests fail the test."""
    with respx.mock(base_url=base_url, assert_all_called=False) as router:
        yield router


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input)


def one_error_line(result: Result) -> str:
    """The single ``error:`` line on stderr (status lines may come before it)."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.output
    return lines[0]


def sent_body(route: respx.Route, call: int = 0) -> dict[str, object]:
    body: dict[str, object] = json.loads(route.calls[call].request.content)
    return body


# ----------------------------------------------------------------------------- help


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_every_command_has_help(command: list[str]) -> None:
    """``--help`` works on every command and group, and never shows the key."""
    result = run(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "usage" in result.stdout.lower()
    assert SECRET not in result.output


def test_help_names_the_key_variable_not_its_value() -> None:
    """The key option documents VECML_API_KEY; its value stays hidden."""
    result = run("ingest", "--help")
    assert "VECML_API_KEY" in result.stdout and SECRET not in result.stdout


def test_emulator_help_is_the_emulator_parser_under_this_name() -> None:
    """``emulator --help`` shows the emulator's own options under ``vecml-async emulator``."""
    result = run("emulator", "--help")
    assert result.exit_code == 0
    assert result.stdout.startswith("usage: vecml-async emulator")
    for option in ("--rate-limit", "--max-body-bytes", "--upload-delay", "--error-500"):
        assert option in result.stdout


def test_version() -> None:
    """``--version`` prints the package version."""
    from vecml_async import __version__

    result = run("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"vecml-async {__version__}"


def test_no_arguments_prints_the_command_list() -> None:
    """Bare ``vecml-async`` lists the commands (usage exit status)."""
    result = run()
    assert result.exit_code == ExitCode.USAGE
    assert "ingest" in result.stdout and "demo" in result.stdout


def test_main_exits_with_the_status() -> None:
    """``main(argv)`` is the entry point: it always exits, with the command's status."""
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    with pytest.raises(SystemExit) as exited:
        main(["train"])
    assert exited.value.code == ExitCode.USAGE


# ----------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "size"),
    [("1500", 1500), ("4MiB", 4 * 2**20), ("2MB", 2_000_000), ("2m", 2_000_000), ("1.5k", 1500),
     ("3 GiB", 3 * 2**30), ("10b", 10)],
)  # fmt: skip
def test_parse_size(text: str, size: int) -> None:
    """Sizes take decimal (kB, MB) and binary (KiB, MiB) units."""
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "args",
    [
        ["--max-bytes", "lots"],
        ["--max-bytes", "0"],
        ["--batch-bytes", "4 apples"],
        ["--max-memory", "0"],
        ["--create"],
    ],
)
def test_ingest_option_errors_are_usage_errors(tmp_path: Path, args: list[str]) -> None:
    """Bad sizes, and --create without --dim: one line, exit 2, nothing sent."""
    data = tmp_path / "d.csv"
    data.write_text("a,b\n1,2\n")
    result = run("ingest", str(data), "-p", "p", "-c", "c", *args)
    assert result.exit_code == ExitCode.USAGE
    one_error_line(result)


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    """A file that does not exist: one line naming it, exit 2."""
    result = run("ingest", str(tmp_path / "nope.csv"), "-p", "p", "-c", "c")
    assert result.exit_code == ExitCode.USAGE
    assert "nope.csv" in one_error_line(result)


def test_missing_option_is_one_line() -> None:
    """A missing required option: one line pointing at --help, exit 2."""
    result = run("train", "p", "c", "m", "--label", "y")
    assert result.exit_code == ExitCode.USAGE
    line = one_error_line(result)
    assert "--task-type" in line and "vecml-async train --help" in line


def test_predict_needs_exactly_one_source(api: respx.MockRouter, tmp_path: Path) -> None:
    """predict with neither or both of --dataset/--file is refused before any request."""
    data = tmp_path / "x.csv"
    data.write_text("a\n1\n")
    for extra in ([], ["--dataset", "d", "--file", str(data)]):
        result = run("predict", "p", "c", "m", *extra)
        assert result.exit_code == ExitCode.USAGE
        assert "exactly one" in one_error_line(result)
    assert not api.calls


def test_train_refuses_an_unknown_mode(api: respx.MockRouter) -> None:
    """An unknown training mode is a usage error, nothing sent."""
    result = run("train", "p", "c", "m", "--task-type", "classification", "--label", "y",
                 "--mode", "turbo")  # fmt: skip
    assert result.exit_code == ExitCode.USAGE and "turbo" in one_error_line(result)
    assert not api.calls


def test_demo_refuses_too_few_rows() -> None:
    """demo --rows under 10 is a usage error."""
    result = run("demo", "--rows", "5")
    assert result.exit_code == ExitCode.USAGE
    one_error_line(result)


@pytest.mark.parametrize(
    ("args", "text"),
    [(["--host", "0.0.0.0"], "loopback"), (["--bogus"], "--bogus"),
     (["--error-500", "2"], "error_500"), (["--fault-schedule", "x"], "schedule"),
     (["--log-level", "loud"], "loud")],
)  # fmt: skip
def test_emulator_option_errors_are_one_line(args: list[str], text: str) -> None:
    """Bad emulator options are refused before serving: one line, exit 2."""
    result = run("emulator", *args)
    assert result.exit_code == ExitCode.USAGE
    assert text in one_error_line(result)


def test_emulator_that_cannot_start_says_so_under_this_name() -> None:
    """A port in use is found only when serving: one line under ``vecml-async emulator``
    (not the standalone program's name, no usage dump), exit 2."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("emulator", "--port", str(port))
    assert result.exit_code == ExitCode.USAGE
    assert f"vecml-async emulator: error: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "usage:" not in result.stderr and "python -m" not in result.stderr


# ----------------------------------------------------------------------------- key and URL


def test_key_comes_from_the_environment_or_the_option(api: respx.MockRouter) -> None:
    """The body carries VECML_API_KEY, or --api-key when given; neither is printed."""
    route = api.post("/create_project").respond(json={"success": True})
    first = run("project", "create", "p")
    second = run("project", "create", "q", "--api-key", "vml_other_key")
    assert first.exit_code == second.exit_code == 0
    assert sent_body(route, 0)["user_api_key"] == SECRET
    assert sent_body(route, 1)["user_api_key"] == "vml_other_key"
    assert SECRET not in first.output + second.output
    assert "vml_other_key" not in second.output


def test_base_url_option_wins_over_the_environment() -> None:
    """--base-url is where requests go, whatever VECML_BASE_URL says."""
    with respx.mock(base_url="http://other.test/api") as router:
        route = router.post("/create_project").respond(json={"success": True})
        result = run("project", "create", "p", "--base-url", "http://other.test/api")
    assert result.exit_code == 0 and route.called


def test_no_key_is_a_usage_error(monkeypatch: pytest.MonkeyPatch, api: respx.MockRouter) -> None:
    """Without a key: one line naming --api-key and VECML_API_KEY (not the Python argument),
    exit 2, nothing sent."""
    monkeypatch.delenv("VECML_API_KEY")
    result = run("project", "create", "p")
    assert result.exit_code == ExitCode.USAGE
    line = one_error_line(result)
    assert "--api-key" in line and "VECML_API_KEY" in line and "api_key=" not in line
    assert not api.calls


def test_a_key_echoed_by_the_server_is_masked(api: respx.MockRouter) -> None:
    """Even if a server puts the key in its error text, the printed line masks it."""
    api.post("/create_project").respond(
        400, json={"success": False, "error_message": f"bad key {SECRET} and vml_opt_key"}
    )
    for extra, used in (([], SECRET), (["--api-key", "vml_opt_key"], "vml_opt_key")):
        result = run("project", "create", "p", *extra)
        assert result.exit_code == ExitCode.ERROR
        line = one_error_line(result)
        assert used not in line and "***" in line


# ----------------------------------------------------------------------------- results


def test_refusal_is_one_line_with_exit_1(api: respx.MockRouter) -> None:
    """A 404 from the server: one line with the endpoint and the server's text, exit 1."""
    api.post("/delete_project").respond(
        404, json={"success": False, "error_message": "Project p does not exist"}
    )
    result = run("project", "delete", "p", "--yes")
    assert result.exit_code == ExitCode.ERROR
    assert one_error_line(result) == (
        "error: /delete_project failed (HTTP 404): Project p does not exist"
    )


def test_project_delete_asks_first(api: respx.MockRouter) -> None:
    """project delete asks for confirmation; 'n' aborts without a request."""
    route = api.post("/delete_project").respond(json={"success": True})
    refused = run("project", "delete", "p", input="n\n")
    assert refused.exit_code == ExitCode.ERROR and not route.called
    accepted = run("project", "delete", "p", input="y\n")
    assert accepted.exit_code == 0 and route.call_count == 1


def test_train_no_wait_prints_the_job_id(api: respx.MockRouter) -> None:
    """train --no-wait --json prints the job id; the request carries every option."""
    route = api.post("/train_automl_model").respond(json={"success": True, "job_id": "j_TrainJob"})
    result = run(
        "train", "p", "c", "m", "--task-type", "regression", "--label", "price",
        "--mode", "auto", "--categorical", "region, tier", "--validation-dataset", "v",
        "--no-wait", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"job_id": "j_TrainJob"}
    body = sent_body(route)
    assert body["training_mode"] == "auto" and body["task_type"] == "regression"
    assert body["categorical_features"] == ["region", "tier"]
    assert body["validation_dataset"] == "v" and body["label_attribute"] == "price"


def test_actions_print_json_and_prompt_on_stderr(api: respx.MockRouter) -> None:
    """Commands that only act print one JSON object with --json; a confirmation prompt goes
    to stderr, so stdout holds nothing but the result."""
    for endpoint in ("create_project", "init", "delete_automl_model", "delete_project"):
        api.post(f"/{endpoint}").respond(json={"success": True})
    assert json.loads(run("project", "create", "p", "--json").stdout) == {
        "project": "p", "status": "ready"
    }  # fmt: skip
    assert json.loads(run("collection", "init", "p", "c", "--dim", "4", "--json").stdout) == {
        "project": "p", "collection": "c", "status": "ready"
    }  # fmt: skip
    assert json.loads(run("model", "delete", "p", "c", "m", "--json", "--yes").stdout) == {
        "project": "p", "collection": "c", "model": "m", "status": "deleted"
    }  # fmt: skip
    deleted = run("project", "delete", "p", "--json", input="y\n")
    assert deleted.exit_code == 0, deleted.output
    assert "Delete project p" in deleted.stderr
    typed = deleted.stdout.index("{")  # CliRunner echoes the typed answer on its stdout
    assert json.loads(deleted.stdout[typed:]) == {"project": "p", "status": "deleted"}


@pytest.mark.parametrize(
    ("job_id", "kind", "endpoint"),
    [("u1", "auto", "get_upload_data_status"), ("x_TrainJob", "auto", "get_automl_training_status"),
     ("x_TrainJob", "upload", "get_upload_data_status"), ("t9", "training",
      "get_automl_training_status")],
)  # fmt: skip
def test_job_kind_is_inferred_or_given(
    api: respx.MockRouter, job_id: str, kind: str, endpoint: str
) -> None:
    """``--kind auto`` polls the training endpoint for ``*_TrainJob`` ids, else uploads."""
    route = api.post(f"/{endpoint}").respond(
        json={"success": True, "status": "finished", "duration": "00:00:01", "num_rows": 7}
    )
    result = run("job", "status", job_id, "--kind", kind)
    assert result.exit_code == 0, result.output
    assert route.called and "finished" in result.stdout


def test_job_wait_polls_until_finished(api: respx.MockRouter) -> None:
    """job wait polls until the status is final and prints it (JSON with --json)."""
    api.post("/get_upload_data_status").mock(
        side_effect=[
            httpx.Response(200, json={"success": True, "status": "pending"}),
            httpx.Response(200, json={"success": True, "status": "in_progress"}),
            httpx.Response(200, json={"success": True, "status": "finished", "num_rows": 3}),
        ]
    )
    result = run("job", "wait", "u1", "--json")
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["status"] == "finished" and status["kind"] == "upload"


def test_failed_job_exits_4(api: respx.MockRouter) -> None:
    """A job the server reports failed: one line with its error text, exit 4."""
    api.post("/get_automl_training_status").respond(
        json={"success": True, "status": "failed", "error": "label missing"}
    )
    result = run("job", "wait", "m_TrainJob")
    assert result.exit_code == ExitCode.JOB
    assert "label missing" in one_error_line(result)


def test_ingest_reports_json_and_jobs(api: respx.MockRouter, tmp_path: Path) -> None:
    """ingest --json reports rows, batches and job ids of a CSV sent in 3 requests."""
    data = tmp_path / "d.csv"
    data.write_text("id,x,y,label\n" + "".join(f"r{i},{i},{-i},{i % 2}\n" for i in range(10)))
    jobs = iter(range(100))
    route = api.post("/add_data_batch").mock(
        side_effect=lambda request: httpx.Response(
            200, json={"success": True, "job_id": f"job{next(jobs)}"}
        )
    )
    result = run(
        "ingest", str(data), "-p", "p", "-c", "c", "--id-column", "id", "--attributes", "label",
        "--max-rows", "4", "--concurrency", "1", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rows_sent"] == 10 and report["batches_sent"] == 3 and report["complete"]
    assert report["job_ids"] == ["job0", "job1", "job2"] and report["failed_ids_file"] is None
    first = sent_body(route)
    assert first["string_ids"] == ["r0", "r1", "r2", "r3"]
    assert first["data"] == [[0.0, 0.0], [1.0, -1.0], [2.0, -2.0], [3.0, -3.0]]
    assert first["attributes"] == [{"label": "0"}, {"label": "1"}, {"label": "0"}, {"label": "1"}]


@pytest.mark.parametrize(("args", "cut_at"), [([], None), (["--batch-bytes", "2KiB"], 2048)])
def test_ingest_sizes_bodies_adaptively_unless_a_size_is_given(
    api: respx.MockRouter, tmp_path: Path, args: list[str], cut_at: int | None
) -> None:
    """Without size options the first body holds the whole small file (adaptive sizing
    starts at 1 MiB); --batch-bytes cuts every body at that size."""
    data = tmp_path / "d.csv"
    data.write_text("id,x,y\n" + "".join(f"r{i},{i}.5,{-i}.25\n" for i in range(300)))
    route = api.post("/add_data_batch").mock(
        return_value=httpx.Response(200, json={"success": True, "job_id": "j"})
    )
    result = run(
        "ingest", str(data), "-p", "p", "-c", "c", "--id-column", "id", "--concurrency", "1",
        "--json", *args,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    sizes = [len(call.request.content) for call in route.calls]
    if cut_at is None:
        assert len(sizes) == 1
    else:  # every body but the last is full at the size given (rows of ~20 bytes)
        assert len(sizes) > 2 and max(sizes) <= cut_at and min(sizes[:-1]) > cut_at - 40
    assert json.loads(result.stdout)["rows_sent"] == 300


def test_ingest_failure_writes_ids_in_the_working_directory(
    api: respx.MockRouter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused batch: exit 3, its ids in ./<file>.failed-ids.txt (the working directory,
    not beside the input, which may be read-only), one error line; nothing had landed, so no
    --checkpoint hint."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    data = tmp_path / "d.csv"
    data.write_text("id,x\n" + "".join(f"r{i},{i}\n" for i in range(6)))
    api.post("/add_data_batch").respond(
        400, json={"success": False, "error_message": "Collection c not found"}
    )
    result = run("ingest", str(data), "-p", "p", "-c", "c", "--id-column", "id")
    assert result.exit_code == ExitCode.INCOMPLETE
    line = one_error_line(result)
    assert "Collection c not found" in line and str(work / "d.csv.failed-ids.txt") in line
    assert "--checkpoint" not in line
    assert not (tmp_path / "d.csv.failed-ids.txt").exists()
    written = (work / "d.csv.failed-ids.txt").read_text().split()
    assert written == [f"r{i}" for i in range(6)]


def test_resume_command_never_shows_the_key() -> None:
    """The printed resume command drops --api-key and its value in both spellings."""
    argv = ["ingest", "a b.csv", "--api-key", SECRET, "-p", "p", f"--api-key={SECRET}"]
    assert resume_command(argv) == "vecml-async ingest 'a b.csv' -p p"


def test_ingest_check_duplicates(api: respx.MockRouter, tmp_path: Path) -> None:
    """--check-duplicates refuses a file with a repeated id before sending it."""
    data = tmp_path / "d.csv"
    data.write_text("id,x\na,1\nb,2\na,3\n")
    route = api.post("/add_data_batch").respond(json={"success": True, "job_id": "j"})
    result = run("ingest", str(data), "-p", "p", "-c", "c", "--id-column", "id",
                 "--check-duplicates")  # fmt: skip
    assert result.exit_code != 0
    assert "duplicate" in one_error_line(result).lower()
    assert not route.called
    plain = run("ingest", str(data), "-p", "p", "-c", "c", "--id-column", "id", "--json")
    assert plain.exit_code == 0 and route.called


def test_checkpoint_hint_only_when_it_would_help(
    api: respx.MockRouter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When some rows landed and others did not, the error suggests --checkpoint (a re-run
    would skip what landed); when nothing landed it does not."""
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "d.csv"
    data.write_text("id,x\n" + "".join(f"r{i},{i}\n" for i in range(6)))
    answers = iter(
        [httpx.Response(200, json={"success": True, "job_id": "j"})]
        + [httpx.Response(400, json={"success": False, "error_message": "bad batch"})] * 5
    )
    api.post("/add_data_batch").mock(side_effect=lambda request: next(answers))
    result = run("ingest", str(data), "-p", "p", "-c", "c", "--id-column", "id",
                 "--max-rows", "3", "--concurrency", "1")  # fmt: skip
    assert result.exit_code == ExitCode.INCOMPLETE
    assert "add --checkpoint FILE so a re-run sends only what did not land" in (
        one_error_line(result)
    )


def test_progress_goes_to_stderr_only(api: respx.MockRouter, tmp_path: Path) -> None:
    """Without --json the report is on stdout and the progress lines on stderr; off a
    terminal each progress line is whole."""
    data = tmp_path / "d.csv"
    data.write_text("id,x\n" + "".join(f"r{i},{i}\n" for i in range(10)))
    api.post("/add_data_batch").respond(json={"success": True, "job_id": "j"})
    result = run("ingest", str(data), "-p", "p", "-c", "c", "--id-column", "id")
    assert result.exit_code == 0, result.output
    assert "ingest:" not in result.stdout and "10 of 10 rows sent" in result.stdout
    assert any(line.startswith("ingest: 10 rows sent (") for line in result.stderr.splitlines())


def test_ingest_that_stops_early_says_where_reading_stopped(
    api: respx.MockRouter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refusal that stops the ingest before the file is read to its end: the error line
    says at which row reading stopped, and --json reports rows_unread and stopped_at."""
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "d.csv"
    data.write_text("id,x\n" + "".join(f"r{i},{i}\n" for i in range(60_000)))
    api.post("/add_data_batch").respond(
        400, json={"success": False, "error_message": "Collection c not found"}
    )
    args = ("ingest", str(data), "-p", "p", "-c", "c", "--id-column", "id")
    result = run(*args, "--max-rows", "100", "--concurrency", "1")
    assert result.exit_code == ExitCode.INCOMPLETE
    assert "reading stopped at row" in one_error_line(result)
    as_json = run(*args, "--max-rows", "100", "--concurrency", "1", "--json")
    report = json.loads(as_json.stdout)
    assert report["stopped_at"] is not None and report["stopped_at"] < 60_000
    assert report["rows_unread"] is None or report["rows_unread"] > 0
