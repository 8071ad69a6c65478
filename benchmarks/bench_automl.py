"""Time and score each AutoML training mode on the official doc's synthetic dataset.

The data follows the AutoML doc's example: 64-dim Gaussian vectors, a category A/B/C, and the label
"1" when the sum of the first 20 components plus the category weight (A 1.0, B -0.5, C 0) is
positive. Run: ``python benchmarks/bench_automl.py [n_train ...]`` (default 1000 20000).
Training is single-threaded (see ``_automl_models.one_thread``), so on a busy machine the CPU
time is the better estimate of the wall time on an idle one.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from vecml_async.emulator.automl import predict, train_model

WEIGHTS = {"A": 1.0, "B": -0.5, "C": 0.0}


def dataset(n: int, seed: int) -> tuple[np.ndarray, list[dict[str, str]]]:
    """The doc's linear-boundary dataset: (vectors, [{"label", "category"}])."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 64)).astype(np.float32)
    cats = rng.choice(list(WEIGHTS), size=n)
    score = X[:, :20].sum(axis=1) + np.array([WEIGHTS[c] for c in cats])
    attrs = [{"label": "1" if s > 0 else "0", "category": str(c)} for s, c in zip(score, cats)]
    return X, attrs


def main(sizes: list[int]) -> None:
    X_test, attrs_test = dataset(2000, seed=2026)
    for n in sizes:
        X, attrs = dataset(n, seed=2025)
        for mode in ("high_speed", "balanced", "high_accuracy"):
            start, cpu = time.perf_counter(), time.process_time()
            model = train_model(
                X,
                attrs,
                model_name="bench",
                task_type="classification",
                training_mode=mode,
                label_attribute="label",
                categorical_features=["category"],
            )
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
            result = predict(model, X_test, attrs_test)
            assert isinstance(model.validation_metric, dict)
            assert isinstance(result.metric, dict)
            print(
                f"n={n:6d} {mode:14s} {elapsed:6.2f}s wall {cpu:6.2f}s cpu  "
                f"model={model.estimator_name:32s} "
                f"cv_acc={model.validation_metric['accuracy']:.3f} "
                f"test_acc={result.metric['accuracy']:.3f} test_auc={result.metric['auc']:.3f}"
            )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000, 20000])
