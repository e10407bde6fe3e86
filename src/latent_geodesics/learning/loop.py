"""The active-learning loop, ROS-free: select, ask, store, retrain, reload, evaluate.

The loop's state lives in the DemoStore, so a process killed at any moment
resumes where it stopped: a round's queries are stored when selected, each
demonstration is committed (and its query marked answered) before it is
acknowledged, and a retrained model is written to a temporary directory and
renamed into place only when complete.
"""
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from latent_geodesics.errors import StoreError
from latent_geodesics.files import open_log
from latent_geodesics.learning.selection import SELECTORS, select_queries
from latent_geodesics.learning.teachers import Refused, checked_demonstration
from latent_geodesics.model.iwae import ModelError, load_model, read_model_yaml
from latent_geodesics.model.loading import load_model_with_graph
from latent_geodesics.settings import setting, validate

RETRAIN = ("fine-tune", "scratch")


def device_refusal(value):
    ok = isinstance(value, str) and (value in ("auto", "cpu") or value.startswith("cuda"))
    return None if ok else "must be auto, cpu or cuda[:N]"


@dataclass
class LoopConfig:
    """The active-learning loop's settings (settings.py): the one declaration the
    node, its YAML and the launch file follow."""
    rounds: int = setting(3, "rounds of the automatic loop", low=1, high=10 ** 6)
    queries_per_round: int = setting(5, "queries asked each round", low=1, high=1000)
    selector: str = setting("combined", "how queries are chosen", choices=SELECTORS)
    # Fine-tuning: 5x faster than 30 epochs of the old schedule, same held-out RMSE (bench 9).
    epochs: int = setting(15, "training epochs per round", low=1, high=10 ** 5)
    seed: int = setting(0, "random seed of selection and training", low=0, high=2 ** 32 - 1)
    device: str = setting("auto", "where rounds train: auto, cpu or cuda[:N]",
                          check=device_refusal)
    # fine-tune: the previous round's model learns the new data; its latent space
    # stays. scratch: a new model of the same shape on all data; slower, but the
    # latent space reorganises, so a filled gap gets room and its crossing evens out.
    retrain: str = setting("fine-tune", "fine-tune (latent space kept) or scratch (a new "
                           "model each round)", choices=RETRAIN)
    # One answer of 10^6 points would otherwise make every retraining that long.
    max_demonstration_points: int = setting(10000, "longer demonstrations are subsampled "
                                            "evenly (logged)", low=2, high=10 ** 7)
    teacher_timeout: float = setting(120.0, "s a teacher may take to answer one query",
                                     positive=True, high=86400.0)
    reload_timeout: float = setting(600.0, "s the server may take to load a round's model",
                                    positive=True, high=86400.0)

    def validate(self):
        """ConfigError naming the first setting outside its declaration."""
        return validate(self)


class ActiveLearner:
    def __init__(self, store, work_dir, initial_model_dir, demonstrate, config=None,
                 reload=None, evaluate=None, on_ack=None, on_round=None, log=print):
        """demonstrate(q) -> (T, Nx) trajectory or raises Refused; reload(dir) swaps the
        serving model; evaluate(model_dir) -> ModelQuality; on_ack(round, idx, id) is
        called after a demonstration is committed; on_round(round, quality) after a round
        (quality None without evaluate)."""
        self.store, self.work_dir = store, work_dir
        self.initial_model_dir = os.path.abspath(initial_model_dir)
        self.demonstrate, self.reload, self.evaluate = demonstrate, reload, evaluate
        self.on_ack, self.on_round, self.log = on_ack, on_round, log
        self.config = (config or LoopConfig()).validate()
        self.progress_every = 5.0   # seconds between fine-tuning progress lines
        store.claim()   # StoreError while another learner writes this store
        os.makedirs(os.path.join(work_dir, "models"), exist_ok=True)

    def check_store(self):
        """StoreError, naming both, for a store another model's loop wrote: its joints
        must be the initial model's (in its order), its round 1 must have asked that
        model and its finished rounds' models must lie in this work_dir; else the
        server would be handed another model, or one trained on other joints."""
        ours = read_model_yaml(self.initial_model_dir)["joint_names"]
        theirs = self.store.joint_names()
        remedy = "give model_dir %s a new store (parameter store, or another work_dir)" \
            % self.initial_model_dir
        if theirs is not None and list(theirs) != list(ours):
            raise StoreError("store %s holds demonstrations of the joints %s, but model_dir "
                             "%s is a model of the joints %s: %s, or set model_dir to the "
                             "store's model" % (self.store.path, shown(theirs),
                                                self.initial_model_dir, shown(ours), remedy))
        first = self.store.round_info(1)
        if first is not None and not same_path(first["model_dir"], self.initial_model_dir):
            raise StoreError("store %s continues the model %s (its round 1 asked it), not "
                             "model_dir %s: %s, or set model_dir to %s"
                             % (self.store.path, first["model_dir"], self.initial_model_dir,
                                remedy, first["model_dir"]))
        models = os.path.join(self.work_dir, "models")
        for rnd in range(1, self.store.current_round()[0] + 1):
            trained = (self.store.round_info(rnd) or {}).get("trained_model_dir")
            if trained and not same_path(os.path.dirname(trained), models):
                raise StoreError("store %s: round %d trained the model %s, outside this "
                                 "work_dir's %s: set work_dir to the store's, or %s"
                                 % (self.store.path, rnd, trained, models, remedy))

    def model_dir(self):
        """The newest completely trained model: the last finished round's, else the initial."""
        rnd, status = self.store.current_round()
        for r in range(rnd, 0, -1):
            info = self.store.round_info(r)
            if info["status"] == "done":
                return info["trained_model_dir"]
        return self.initial_model_dir

    def completed_rounds(self):
        rnd, status = self.store.current_round()
        return rnd if status == "done" else rnd - 1

    def run(self):
        self.check_store()
        rnd, status = self.store.current_round()
        if status != "done":
            self.log("resuming round %d (%s)" % (rnd, status))
            self.run_round(rnd)
        while self.completed_rounds() < self.config.rounds:
            self.run_round(self.completed_rounds() + 1)

    def run_round(self, rnd):
        info = self.store.round_info(rnd)
        if info is None:
            model_dir = self.model_dir()
            queries = self.select(model_dir, self.config.queries_per_round,
                                  self.config.selector, seed=self.config.seed + rnd)
            self.store.start_round(rnd, model_dir, self.config.selector, queries)
            info = self.store.round_info(rnd)
        model_dir = info["model_dir"]
        if info["status"] == "collecting":
            self.collect(rnd, model_dir)
            self.store.set_status(rnd, "training")
        new_dir = self.retrain(rnd, model_dir)
        if self.reload is not None:
            self.reload(new_dir)
        metrics = self.evaluate(new_dir) if self.evaluate is not None else None
        self.store.set_status(rnd, "done", new_dir,
                              {} if metrics is None else asdict(metrics))
        self.log("round %d done%s" % (rnd, "" if metrics is None else ": " + metrics.summary()))
        if self.on_round is not None:
            self.on_round(rnd, metrics)

    def select(self, model_dir, n, selector, seed=0):
        model, graph = load_model_with_graph(model_dir, self.config.device, warn=self.log)
        return select_queries(model, graph, n, selector, seed=seed)

    def collect(self, rnd, model_dir):
        width = len(self.store.joint_names())
        for idx, query in self.store.pending(rnd):
            try:
                demo = self.capped(checked_demonstration(self.demonstrate(query), width),
                                   rnd, idx)
            except Exception as e:   # one bad answer or failing teacher: that query only
                reason = str(e) if isinstance(e, Refused) else "the teacher failed: %r" % e
                self.store.refuse(rnd, idx, reason)
                self.log("round %d query %d refused: %s" % (rnd, idx, reason))
                continue
            demo_id = self.store.add_demonstration(rnd, idx, model_dir, demo)
            if self.on_ack is not None:   # only now is it acknowledged
                self.on_ack(rnd, idx, demo_id)

    def capped(self, demo, rnd, idx):
        """At most max_demonstration_points points, evenly subsampled (ends kept)."""
        cap = self.config.max_demonstration_points
        if len(demo) <= cap:
            return demo
        self.log("round %d query %d: a demonstration of %d points, subsampled evenly to "
                 "max_demonstration_points %d" % (rnd, idx, len(demo), cap))
        return demo[np.unique(np.linspace(0, len(demo) - 1, cap).round().astype(int))]

    def retrain(self, rnd, init_dir):
        """Fine-tune or retrain (config.retrain) in a separate process into
        models/round_<r>, renamed when complete."""
        models = os.path.join(self.work_dir, "models")
        out = os.path.join(models, "round_%d" % rnd)
        try:
            load_model(out, "cpu")
            return out                     # finished before an earlier crash
        except ModelError:
            shutil.rmtree(out, ignore_errors=True)
        for stale in os.listdir(models):   # half-written models of killed runs
            if stale.startswith("round_%d.tmp" % rnd):
                shutil.rmtree(os.path.join(models, stale), ignore_errors=True)
        tmp = "%s.tmp%d" % (out, os.getpid())
        data_path = os.path.join(self.work_dir, "data_round_%d.npz" % rnd)
        self.store.export(data_path)
        cmd = [sys.executable, "-m", "latent_geodesics.model.training", "--data", data_path,
               "--out", tmp, "--epochs", str(self.config.epochs),
               "--seed", str(self.config.seed + rnd), "--device", self.config.device,
               "--exit-with-parent", str(os.getpid())]   # preexec_fn is unsafe in threads
        cmd += shape_of(init_dir) if self.config.retrain == "scratch" else ["--init", init_dir]
        log_path = os.path.join(self.work_dir, "training_round_%d.log" % rnd)
        with open_log(log_path) as log:
            child = subprocess.Popen(cmd, stdout=log, stderr=log)
            while child.poll() is None:   # the child's progress bar, with its ETA
                time.sleep(self.progress_every)
                line = last_progress(log_path)
                if line:
                    self.log("round %d %s: %s" % (rnd, self.config.retrain, line))
        if child.returncode != 0:
            raise RuntimeError("retraining failed: %s" % Path(log_path).read_text().strip()[-500:])
        os.rename(tmp, out)
        return out


def same_path(a, b):
    return os.path.realpath(a) == os.path.realpath(b)


def shown(names, most=8):
    """A list of joint names for a message: at most `most`, then how many in all."""
    names = list(names)
    if len(names) <= most:
        return "%s" % names
    return "%s ... (%d joints)" % (names[:most], len(names))


def shape_of(model_dir):
    """Training flags for a new model shaped like the one in model_dir."""
    meta = read_model_yaml(model_dir)
    flags = ["--latent-dim", str(meta["z_dim"]), "--activation", meta["activation"],
             "--hidden"] + [str(h) for h in meta["hidden"]]
    flags += ["--noise-floor", str(meta.get("noise_floor", 0.0))]
    samples = meta.get("training", {}).get("importance_samples")
    return flags + (["--samples", str(samples)] if samples else [])


def last_progress(path):
    """The newest tqdm update in a log file (updates are separated by carriage returns)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - 400))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    parts = [p.strip() for p in tail.replace("\n", "\r").split("\r") if "it/s" in p
             or "s/it" in p]
    return parts[-1] if parts else ""


def main(argv=None):
    """Run the loop without ROS against a simulated teacher (used by the crash test)."""
    import argparse

    from latent_geodesics.learning.store import DemoStore
    from latent_geodesics.learning.teachers import TEACHERS
    p = argparse.ArgumentParser(description="active learning without ROS")
    p.add_argument("--store", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--model", required=True, help="initial model directory")
    p.add_argument("--initial-data", help="NPZ (data, joint_names) stored once as round 0")
    p.add_argument("--system", default="arm", choices=sorted(TEACHERS))
    defaults = LoopConfig()
    p.add_argument("--rounds", type=int, default=defaults.rounds)
    p.add_argument("--queries", type=int, default=defaults.queries_per_round)
    p.add_argument("--selector", default=defaults.selector)
    p.add_argument("--epochs", type=int, default=defaults.epochs)
    p.add_argument("--device", default=defaults.device)
    p.add_argument("--retrain", default=defaults.retrain, choices=RETRAIN)
    args = p.parse_args(argv)
    store = DemoStore(args.store)
    if args.initial_data:
        from latent_geodesics.data.loaders import load_data
        store.seed(*load_data(args.initial_data))
    teacher = TEACHERS[args.system]()
    config = LoopConfig(rounds=args.rounds, queries_per_round=args.queries,
                        selector=args.selector, epochs=args.epochs, device=args.device,
                        retrain=args.retrain)
    ActiveLearner(store, args.work, args.model, teacher.demonstrate, config,
                  on_ack=lambda r, i, d: print("ACK %d %d %d" % (r, i, d), flush=True),
                  log=lambda m: print(m, flush=True)).run()


if __name__ == "__main__":
    main()
