"""Training throughput (samples/s) of each encoder and method, measured in one run.

Times full optimisation steps (forward, backward, optimiser) of `UDAModule.compute_losses` on random
batches shaped like the cache's (176 channels x 128 frames), and prints samples/s and the ratio of
DANN (labelled + unlabelled batch) to source-only steps. Uses the GPU when there is one.

    .venv/bin/python benchmarks/train_speed.py [--batch 64] [--steps 20] [--resnet-steps 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch

from sed_uda.models.uda import UDAModule


def samples_per_second(encoder: str, method: str, batch: int, steps: int, device: torch.device) -> float:
    model = UDAModule(method=method, encoder=encoder, in_channels=176).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.grl.coeff = 0.5

    def make() -> dict[str, torch.Tensor]:
        x = torch.randn(batch, 176, 128, device=device)
        return {
            "x": x,
            "lengths": torch.full((batch,), 128, device=device),
            "y": torch.randint(0, 5, (batch,)),
        }

    labelled, unlabelled = make(), make()
    unlabelled.pop("y")
    labelled["y"] = labelled["y"].to(device)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def step() -> None:
        optimiser.zero_grad(set_to_none=True)
        with amp:
            losses = model.compute_losses(labelled, unlabelled if method == "dann" else None)
        losses["loss"].backward()
        optimiser.step()

    step()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--resnet-steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"device: {device}, threads: {args.threads}, batch {args.batch} x 176 channels x 128 frames")
    for encoder, steps in (("cnn1d", args.steps), ("resnet50", args.resnet_steps)):
        rates = {
            m: samples_per_second(encoder, m, args.batch, steps, device) for m in ("source_only", "dann")
        }
        ratio = rates["source_only"] / rates["dann"]
        print(
            f"{encoder:9s} source_only {rates['source_only']:8.1f} samples/s | "
            f"dann {rates['dann']:8.1f} labelled samples/s | dann/source_only step time {ratio:.2f}x"
        )


if __name__ == "__main__":
    main()
