"""One unlearning run from the command line: the notebooks' ``ensure_unlearned``, as a script.

    python -m nbutils.unlearning --profile tiny --method npo
    python -m nbutils.unlearning --profile tiny --method npo --hparam beta=0.05 \\
        --hparam learning_rate=1e-4 --override unlearn.epochs=2
    python -m nbutils.unlearning --profile tiny --method simnpo --task muse_books
    python -m nbutils.unlearning --profile tiny --method npo --task muse_news --forget scal/forget_2
    accelerate launch --config_file configs/accelerate/ddp.yaml \\
        -m nbutils.unlearning --profile paper --method npo
    accelerate launch --multi_gpu --num_processes 2 -m nbutils.unlearning --method npo

The last one runs two CPU processes (gloo DDP) on a machine without GPUs (``--cpu`` would
start a single process: accelerate's multi-CPU launcher needs mpirun).

``--override`` sets profile fields (as the notebooks' ``OVERRIDES``), ``--hparam`` the method's
hyperparameters; values are YAML (``3``, ``true``, ``[1, 2]``), and ``1e-4`` is a float.
Without ``--start`` the run starts from the profile's target model, built once (on a
multi-process run, together by every process). The run folder is printed on the last line;
it is cached by configuration, so a second call with the same arguments trains nothing.

With ``WORKBOOK_DEBUG_PAIRS=1`` each process also writes ``pairs-rank<r>.json`` into the run
folder: the retain partners that process's ``UnlearningDataset`` gives the first forget
examples (evidence that ranks draw different partners).
"""

from __future__ import annotations

import argparse
import json
import os

from ..profiles import parse_params
from .tasks import TASKS


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m nbutils.unlearning", description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="tiny", help="tiny, smol or paper")
    parser.add_argument("--method", required=True, help="an unlearning method, e.g. npo, graddiff, simnpo")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="profile override, e.g. unlearn.epochs=2 (repeatable)")
    parser.add_argument("--hparam", action="append", default=[], metavar="KEY=VALUE",
                        help="method hyperparameter, e.g. beta=0.05 (repeatable)")
    parser.add_argument("--start", default=None, help="checkpoint to unlearn from (default: the task's target model)")
    parser.add_argument("--task", default="tofu", choices=TASKS,
                        help="what to unlearn: TOFU's forget split or MUSE's raw forget text")
    parser.add_argument("--forget", default="forget",
                        help="MUSE only: the forget set, e.g. scal/forget_2 or sust/forget_3")
    args = parser.parse_args(argv)

    import torch
    from accelerate import PartialState

    from ..data.tofu import load_tofu
    from ..profiles import get_profile
    from .cached_runs import ensure_unlearned, method_for
    from .tasks import UnlearningTask

    # everything a user typed is checked before any data or model is built (minutes on a
    # fresh cache): the profile and its overrides, the method, its hyperparameters, the task
    try:
        overrides, hparams = parse_params(args.override), parse_params(args.hparam)
        task = UnlearningTask(args.task, args.forget)
        profile = get_profile(args.profile, overrides)
        task.check_applicable(method_for(task.profile_for(profile), args.method, **hparams))
    except (ValueError, KeyError, TypeError) as e:
        parser.error(str(e).strip('"'))
    if int(os.environ.get("WORLD_SIZE", 1)) > 1 and not torch.cuda.is_available():
        os.environ.setdefault("ACCELERATE_USE_CPU", "true")  # CPU processes (gloo); the Trainer reads it too
    state = PartialState(cpu=os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes"))
    with state.main_process_first():  # one process writes the data and its Arrow cache
        for split in ("full", profile.forget_split, profile.retain_split):
            load_tofu(profile, split)
    # Training is collective under DDP / DeepSpeed / FSDP, so every process builds the target
    # model together (the main one writes it); one process alone would wait forever on the others.
    start = args.start or task.start_model(task.profile_for(profile))
    out = ensure_unlearned(profile, args.method, start=start, task=task, **hparams)

    if os.environ.get("WORKBOOK_DEBUG_PAIRS"):
        _write_pairs(profile, out, state)
    if state.is_main_process:
        print(out)
    return out


def _write_pairs(profile, out, state, n: int = 8):
    """The retain partners of the first ``n`` forget examples, as this process draws them."""
    from ..data.tofu import load_tofu
    from .trainer import UnlearningDataset, process_rank
    # built as unlearn() builds its dataset: the rank comes from the launcher's environment
    n_forget = len(load_tofu(profile, profile.forget_split))
    n_retain = len(load_tofu(profile, profile.retain_split))
    ds = UnlearningDataset(list(range(n_forget)), list(range(n_retain)), seed=profile.seed)
    record = {"rank": ds.rank, "process_rank": process_rank(), "process_index": state.process_index,
              "num_processes": state.num_processes, "n_forget": n_forget, "n_retain": n_retain,
              "retain_index": [ds.retain_index(i) for i in range(min(n, n_forget))]}
    (out / f"pairs-rank{state.process_index}.json").write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
