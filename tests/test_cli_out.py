"""``--out`` of ``fastgen`` (demo) and ``fastgen evaluate`` is created and checked writable
before any training or evaluation: an unusable path exits with status 2 naming ``--out``,
and spies show that training / evaluation never started (no run loses its results at the
end). Tests run as root, so unwritable directories are a path under a regular file, an
existing file, and a failing write probe."""

import pytest

import fastgen.cli as cli
import fastgen.demo
import fastgen.evaluation
import fastgen.evaluation.io


@pytest.fixture
def spies(monkeypatch):
    """Record calls of the demo's training run and of the evaluation (and its input
    reading), which must not start when --out is unusable."""
    calls = []

    def spy(name):
        def record(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} started")

        return record

    monkeypatch.setattr(fastgen.demo, "run", spy("demo.run"))
    monkeypatch.setattr(fastgen.evaluation, "evaluate", spy("evaluate"))
    monkeypatch.setattr(fastgen.evaluation.io, "read_samples", spy("read_samples"))
    return calls


def _bad_outs(tmp_path):
    regular = tmp_path / "a-file"
    regular.write_text("not a directory")
    return {"under a file": regular / "results", "an existing file": regular}


def _commands(out, tmp_path):
    samples = tmp_path / "samples.npy"
    return {
        "demo": ["demo", "--steps", "1", "--out", str(out)],
        "evaluate": ["evaluate", str(samples), str(samples), "--out", str(out)],
    }


@pytest.mark.parametrize("command", ["demo", "evaluate"])
@pytest.mark.parametrize("case", ["under a file", "an existing file"])
def test_unusable_out_exits_2_before_any_work(case, command, tmp_path, spies, capsys):
    out = _bad_outs(tmp_path)[case]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(_commands(out, tmp_path)[command])
    assert exit_info.value.code == 2
    assert "--out" in capsys.readouterr().err
    assert spies == []


@pytest.mark.parametrize("command", ["demo", "evaluate"])
def test_unwritable_out_exits_2_before_any_work(command, tmp_path, spies, monkeypatch, capsys):
    """A directory where no file can be created (read-only mount, ACL): the write probe
    fails, as it would for a non-root user in a read-only directory."""

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cli.tempfile, "TemporaryFile", refuse)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(_commands(tmp_path / "out", tmp_path)[command])
    assert exit_info.value.code == 2
    assert "Permission denied" in capsys.readouterr().err
    assert spies == []


def test_out_is_created_before_training(tmp_path, monkeypatch):
    out = tmp_path / "new" / "nested"
    seen = []

    def run(steps, device, backend, path, *args, **kwargs):
        seen.append(path.is_dir())
        raise KeyboardInterrupt  # stop here: training would start now

    monkeypatch.setattr(fastgen.demo, "run", run)
    with pytest.raises(KeyboardInterrupt):
        cli.main(["demo", "--steps", "1", "--out", str(out)])
    assert seen == [True]
    assert list(out.iterdir()) == []  # the write probe leaves nothing behind
