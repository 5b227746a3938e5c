"""A training stand-in with a known optimum, for `mlrun sweep --search` (see the README).

The final loss is (log10(lr) + 2.5)^2 + 10 (dropout - 0.2)^2 + 0.1 (layers - 3)^2, plus 0.5
for any optimizer but adam: 0 at lr=10**-2.5, dropout=0.2, layers=3, optimizer=adam. Each epoch
logs a loss that falls towards it, so a pruner can compare trials step by step.
"""

import argparse
import math

import mlrun_log


def final_loss(lr: float, dropout: float, layers: int, optimizer: str) -> float:
    penalty = 0.0 if optimizer == "adam" else 0.5
    shape = (math.log10(lr) + 2.5) ** 2 + 10 * (dropout - 0.2) ** 2 + 0.1 * (layers - 3) ** 2
    return shape + penalty


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--dropout", type=float, required=True)
    parser.add_argument("--layers", type=int, required=True)
    parser.add_argument("--optimizer", required=True)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    final = final_loss(args.lr, args.dropout, args.layers, args.optimizer)
    for epoch in range(args.epochs):
        loss = final + 1.0 / (epoch + 1)  # falls towards the final loss
        mlrun_log.log_metric("loss", loss, step=epoch)
    mlrun_log.log_metric("loss", final, step=args.epochs)
    print(f"loss {final:.6f}")


if __name__ == "__main__":
    main()
