"""One CurveModel shared by 8 threads gives exactly the serial results."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from curvae.runtime import CurveModel


def test_eight_threads_match_serial(bundle_dir, beta_targets):
    model = CurveModel.load(bundle_dir)
    rng = np.random.default_rng(0)
    jobs = [rng.standard_normal((int(n), 2)).astype(np.float32) for n in rng.integers(1, 300, size=64)]
    serial_dec = [model.decode(z) for z in jobs]
    serial_fit = model.fit(beta_targets)

    def work(i):
        return model.decode(jobs[i]), model.encode(beta_targets[i % 8:i % 8 + 8])

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(len(jobs))))
        fits = list(pool.map(lambda _: model.fit(beta_targets), range(8)))
    for (dec, enc), ref, i in zip(results, serial_dec, range(len(jobs))):
        np.testing.assert_array_equal(dec, ref)
        np.testing.assert_array_equal(enc, model.encode(beta_targets[i % 8:i % 8 + 8]))
    for fit in fits:
        np.testing.assert_array_equal(fit.z, serial_fit.z)
        np.testing.assert_array_equal(fit.residual, serial_fit.residual)
