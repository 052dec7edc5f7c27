"""A training run's folder: its lock, resume, history, deferred checkpoints and the messages of a stopped run."""

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hypersiren.across.checkpoint import load_checkpoint, load_run, save_checkpoint
from hypersiren.across.config import RunConfig
from hypersiren.across.model import HyperSiren
from hypersiren.across.run_folder import (
    LOCK,
    RunFolder,
    StopSignals,
    checkpoint_state,
    logged_until,
    program_command,
    resume_message,
)
from hypersiren.errors import ConfigError
from hypersiren.results import write_json


@pytest.fixture
def config(tiny_model_config):
    config = RunConfig(model=tiny_model_config())
    config.train.max_steps, config.train.checkpoint_every = 5, 2
    return config


@pytest.fixture
def model_and_optimizer(config):
    model = HyperSiren(config.model)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def test_history_keeps_the_readable_lines_up_to_the_checkpoint(tmp_path):
    history_path = tmp_path / "history.jsonl"
    assert logged_until(history_path, 5) == ""  # missing: empty
    lines = ['{"step": 1, "loss": 0.5}', "", '{"step": 2, "lo', '{"no_step": 1}', "[3]", '{"step": 3}', '{"step": 9}']
    history_path.write_text("\n".join(lines))
    assert logged_until(history_path, 5) == '{"step": 1, "loss": 0.5}\n{"step": 3}\n'


def test_the_lock_admits_one_training_at_a_time(tmp_path):
    first, second = RunFolder(tmp_path / "run"), RunFolder(tmp_path / "run")
    first.claim(stamp=None)
    with pytest.raises(ConfigError, match="another training is running in"):
        second.claim(stamp=None)
    first.release()
    second.claim(stamp=None)  # released with its holder
    second.release()


def test_a_checkpoint_replaced_while_the_run_started_is_refused(tmp_path):
    run = RunFolder(tmp_path)
    (tmp_path / "checkpoint.pt").write_bytes(b"another run's")
    with pytest.raises(ConfigError, match="changed while this run started"):
        run.claim(stamp=None)
    run.claim(run.checkpoint_stamp())
    run.release()


def test_only_a_new_or_empty_folder_or_a_run_is_taken(tmp_path):
    assert RunFolder(tmp_path / "new").checkpoint_stamp() is None
    assert RunFolder(tmp_path).checkpoint_stamp() is None  # empty
    (tmp_path / "notes.txt").write_text("someone's")
    with pytest.raises(ConfigError, match="non-empty folder that holds no hypersiren run"):
        RunFolder(tmp_path).checkpoint_stamp()
    with pytest.raises(ConfigError, match="is a file"):
        RunFolder(tmp_path / "notes.txt").checkpoint_stamp()


def test_a_checkpoint_is_written_once_the_next_step_shows_it_sound(tmp_path, config, model_and_optimizer):
    run = RunFolder(tmp_path)
    run.stepped(2, *model_and_optimizer, config)  # every 2 steps: due, not yet written
    assert not run.checkpoint.exists() and run.saved_step is None
    run.keep_sound(2, *model_and_optimizer, config)  # step 3 gave a finite loss from step 2's weights
    assert load_checkpoint(run.checkpoint)["step"] == 2 and run.saved_step == 2
    run.stepped(3, *model_and_optimizer, config)
    run.keep_sound(3, *model_and_optimizer, config)
    assert load_checkpoint(run.checkpoint)["step"] == 2  # not a checkpoint step
    run.stepped(5, *model_and_optimizer, config)  # the last: no step comes after it
    assert load_checkpoint(run.checkpoint)["step"] == 5 and run.saved_step == 5


def test_another_process_keeps_the_schedule_but_writes_nothing(tmp_path, config, model_and_optimizer):
    run = RunFolder(tmp_path, write=False)
    run.stepped(2, *model_and_optimizer, config)
    run.keep_sound(2, *model_and_optimizer, config)
    run.start(config, step=2)
    run.log(3, {"loss": 0.5})
    assert run.saved_step == 2 and list(tmp_path.iterdir()) == []


def test_a_resumed_run_takes_the_checkpoints_config_and_refuses_another_model(tmp_path, config, model_and_optimizer):
    state = checkpoint_state(*model_and_optimizer, step=3, config=config)
    resumed = RunFolder(tmp_path).config(RunConfig(), overrides={"train.lr": 1e-6}, state=state)
    assert resumed.model == config.model and resumed.train.max_steps == 5 and resumed.train.lr == 1e-6
    with pytest.raises(ConfigError, match="cannot change the model of a trained run on resume"):
        RunFolder(tmp_path).config(RunConfig(), overrides={"model.latent_dim": 9}, state=state)
    assert RunFolder(tmp_path).config(config, overrides={}, state=None) is config  # a new run: the preset


def test_restore_loads_the_state_and_the_new_learning_rate(tmp_path, config, model_and_optimizer):
    model, optimizer = model_and_optimizer
    state = checkpoint_state(model, optimizer, step=4, config=config)
    other = HyperSiren(config.model)
    other_optimizer = torch.optim.Adam(other.parameters(), lr=1e-3)
    run = RunFolder(tmp_path)
    assert run.restore(other, other_optimizer, state, lr=1e-5) == 4 and run.saved_step == 4
    torch.testing.assert_close(other.state_dict(), model.state_dict())
    assert other_optimizer.param_groups[0]["lr"] == 1e-5


def test_a_resumed_history_keeps_what_the_checkpoint_had_seen(tmp_path, config, model_and_optimizer):
    run = RunFolder(tmp_path)
    run.start(config, step=0)
    for step in (1, 2, 3):
        run.log(step, {"loss": float(step)})
    resumed = RunFolder(tmp_path)
    resumed.restore(*model_and_optimizer, checkpoint_state(*model_and_optimizer, 2, config), lr=1e-3)
    resumed.start(config, step=2)
    assert resumed.history.read_text() == '{"step": 1, "loss": 1.0}\n{"step": 2, "loss": 2.0}\n'
    assert RunConfig.load(tmp_path / "config.json") == config


@pytest.mark.parametrize(
    ("saved_step", "phrases"),
    [
        (None, ["at step 4; parameters were not updated and no checkpoint exists", "the run starts over"]),
        (3, ["step 3) holds the very weights", "delete it"]),
        (2, ["step 2) is intact", "e.g. --train.lr 1e-05", "resume from it"]),
    ],
)
def test_the_divergence_message_says_what_the_checkpoint_on_disk_is_good_for(tmp_path, config, saved_step, phrases):
    run = RunFolder(tmp_path)
    run.saved_step = saved_step
    message = run.divergence_message(float("nan"), float("inf"), step=3, config=config)
    for phrase in phrases:
        assert phrase in message, message


def test_a_finished_run_says_how_to_go_on(tmp_path, capsys):
    run = RunFolder(tmp_path)
    assert not run.finished(None, max_steps=5) and not run.finished({"step": 4}, max_steps=5)
    assert run.finished({"step": 5}, max_steps=5)
    assert "--train.max_steps 10" in capsys.readouterr().out


def test_a_resume_says_what_becomes_of_the_schedule(tmp_path):
    saved, same = RunConfig(), RunConfig()
    saved.train.lr_schedule = same.train.lr_schedule = "cosine"
    assert resume_message(tmp_path, 1000, saved, same).endswith(
        "from step 1000 of 2000 (its checkpoint); the cosine schedule goes on where it stopped"
    )
    longer = RunConfig()
    longer.train.lr_schedule, longer.train.max_steps = "cosine", 4000
    assert resume_message(tmp_path, 1000, saved, longer).endswith(
        "the cosine schedule now decays from 0.0001 to 0 over 4000 steps (it was 0.0001 over 2000), so the learning "
        "rate at step 1000 is 8.54e-05 instead of 5e-05"
    )
    assert resume_message(tmp_path, 10, RunConfig(), RunConfig()).endswith("learning rate 0.0001, constant")


def test_a_printed_command_runs_this_python_on_the_repositorys_script(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # another folder: the script's path must still reach it
    python, script, *arguments = shlex.split(program_command("eval/evaluate.py", "--run", "my run"))
    assert os.path.samefile(python, sys.executable) and arguments == ["--run", "my run"]
    assert Path(script).resolve() == Path(__file__).resolve().parents[1] / "eval" / "evaluate.py"


def test_a_deleted_lock_file_lets_no_second_training_in(tmp_path):
    holder = "from hypersiren.across.run_folder import RunFolder; import sys; RunFolder(sys.argv[1]).claim(stamp=None);"
    holder += " print('claimed', flush=True); sys.stdin.read()"  # holds the lock until its stdin closes
    first = subprocess.Popen(
        [sys.executable, "-c", holder, str(tmp_path / "run")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert first.stdout.readline() == "claimed\n"
        (tmp_path / "run" / LOCK).unlink()  # tidying what looks like a stale lock file
        with pytest.raises(ConfigError, match="another training is running in"):
            RunFolder(tmp_path / "run").claim(stamp=None)
    finally:
        first.communicate(timeout=60)  # closes its stdin: it ends, and its lock with it
    second = RunFolder(tmp_path / "run")
    second.claim(stamp=None)
    assert (tmp_path / "run" / LOCK).is_file()  # the folder is marked as a run again
    second.release()


def test_a_hand_edit_to_config_json_is_named_rather_than_ignored(tmp_path, config, model_and_optimizer, capsys):
    state = checkpoint_state(*model_and_optimizer, step=3, config=config)
    save_checkpoint(state, tmp_path / "checkpoint.pt")
    edited = config.to_dict()
    edited["train"]["lr"], edited["data"]["root"] = 1e-3, "/data/celeba copy"
    write_json(edited, tmp_path / "config.json")
    RunFolder(tmp_path).config(RunConfig(), overrides={"data.root": "/data"}, state=state)  # a resumed training
    warning = capsys.readouterr().err
    assert "config.json differs from the checkpoint's config (--train.lr 0.001)" in warning  # data.root was given
    load_run(tmp_path)  # an eval program
    assert "(--data.root '/data/celeba copy', --train.lr 0.001)" in capsys.readouterr().err
    write_json(config.to_dict(), tmp_path / "config.json")
    load_run(tmp_path)
    assert capsys.readouterr().err == ""  # a faithful copy: nothing to say


def test_a_start_that_fails_leaves_the_folder_as_it_found_it(tmp_path):
    new = RunFolder(tmp_path / "runs" / "new")
    new.claim(stamp=None)
    new.abandon()  # e.g. the data root held no dataset
    assert not (tmp_path / "runs").exists()
    (tmp_path / "empty").mkdir()
    empty = RunFolder(tmp_path / "empty")
    empty.claim(stamp=None)
    empty.abandon()
    assert list((tmp_path / "empty").iterdir()) == []
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / LOCK).touch()  # an earlier run's
    again = RunFolder(tmp_path / "run")
    again.claim(stamp=None)
    again.abandon()
    assert (tmp_path / "run" / LOCK).is_file()
    RunFolder(tmp_path / "run").claim(stamp=None)  # the lock was released too


def test_a_started_run_is_not_undone(tmp_path, config):
    run = RunFolder(tmp_path / "run")
    run.claim(stamp=None)
    run.start(config, step=0)
    run.abandon()  # what a failure after the start would do: the folder is a run now
    assert (tmp_path / "run" / LOCK).is_file() and (tmp_path / "run" / "config.json").is_file()


def test_starting_over_keeps_the_old_history_and_says_so(tmp_path, config, capsys):
    (tmp_path / "history.jsonl").write_text('{"step": 128, "loss": 0.5}\n')  # a run killed before any checkpoint
    (tmp_path / "history.1.jsonl").write_text("an earlier one\n")
    RunFolder(tmp_path).start(config, step=0)
    assert f"{tmp_path} holds no checkpoint, so the run starts over" in capsys.readouterr().out
    assert (tmp_path / "history.2.jsonl").read_text() == '{"step": 128, "loss": 0.5}\n'
    assert (tmp_path / "history.1.jsonl").read_text() == "an earlier one\n"
    assert (tmp_path / "history.jsonl").read_text() == ""
    RunFolder(tmp_path).start(config, step=0)  # an empty history: nothing to keep, nothing said
    assert capsys.readouterr().out == "" and not (tmp_path / "history.3.jsonl").exists()


def test_a_stopped_run_saves_the_step_it_reached(tmp_path, config, model_and_optimizer):
    run = RunFolder(tmp_path)
    run.stopped(0, *model_and_optimizer, config)  # no step taken: nothing to save
    assert not run.checkpoint.exists()
    run.stopped(3, *model_and_optimizer, config)  # between checkpoint steps (every 2)
    assert load_checkpoint(run.checkpoint)["step"] == 3 and run.saved_step == 3


def test_sigterm_and_ctrl_c_end_the_step_under_way_and_a_second_one_stops_at_once():
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with StopSignals() as stop:
        signal.raise_signal(signal.SIGTERM)  # noted, not raised: the loop ends its step first
        assert stop.received == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_a_preset_named_on_resume_is_said_to_be_ignored(tmp_path, config, model_and_optimizer, capsys):
    state = checkpoint_state(*model_and_optimizer, step=3, config=config)
    preset = RunConfig.from_dict(config.to_dict())
    preset.train.lr = 0.5  # the one field where the preset differs from the run
    RunFolder(tmp_path).config(preset, overrides={}, state=state)  # no --config given: nothing to say
    assert capsys.readouterr().err == ""
    resumed = RunFolder(tmp_path).config(preset, overrides={}, state=state, given_preset="train/paper.toml")
    warning = capsys.readouterr().err.strip()
    assert resumed.train.lr == config.train.lr  # the checkpoint's config, as before
    assert warning.startswith("warning: --config train/paper.toml is not read on resume") and "\n" not in warning
    assert "(the preset differs in train.lr)" in warning
    RunFolder(tmp_path).config(preset, overrides={"train.lr": 0.5}, state=state, given_preset="train/paper.toml")
    assert "(which the preset matches)" in capsys.readouterr().err  # train.lr given now: it applies
