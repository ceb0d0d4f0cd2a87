"""One training step under torch.distributed, for tests/test_train.py (run with torchrun).

Writes the loss and every parameter's (all-reduced) gradient of rank 0 to the given file, so the
test can compare them with the same step in one process.

    torchrun --nproc_per_node 2 tests/dist_step.py OUT.pt PAIRS.parquet BATCHES.parquet
"""

import sys


def main(out: str, pairs_path: str, batches_path: str) -> None:
    import torch
    from accelerate import Accelerator

    from embedlab import schemas
    from embedlab.train import TrainConfig, build_student
    from embedlab.train.distributed import world
    from embedlab.train.loop import backward, plan

    accelerator = Accelerator(cpu=True)
    pairs = schemas.read(pairs_path, schemas.Pairs)
    steps = plan(pairs, schemas.read(batches_path, schemas.Batches))
    model = build_student("static", "sentence-transformers/all-MiniLM-L6-v2")
    loss, tokens = backward(model, torch.nn.Identity(), steps[0], TrainConfig(), accelerator)
    if world()[0] == 0:
        grads = {k: p.grad for k, p in model.named_parameters()}
        torch.save({"loss": loss, "tokens": tokens, "grads": grads, "world": world()[1]}, out)


if __name__ == "__main__":
    main(*sys.argv[1:4])
