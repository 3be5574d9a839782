"""The σ-index path is integer-exact: same result for any thread count, equal to int64 arithmetic."""

import numpy as np
import torch

from openjai.codec.scale_decoder import ACT_BITS, ACT_LIMIT, WEIGHT_BITS, Z_LIMIT


def _int64_reference(net, z: np.ndarray) -> np.ndarray:
    """The same network in numpy int64 (exact by construction), for comparison."""
    x = z.astype(np.int64)
    layers = net.integer_parameters()
    for i, (w, b) in enumerate(layers):
        w, b = w.numpy().astype(np.int64), b.numpy().astype(np.int64)
        n, c, h, width = x.shape
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        acc = np.zeros((n, w.shape[0], h, width), dtype=np.int64)
        for dy in range(3):
            for dx in range(3):
                acc += np.einsum("oc,nchw->nohw", w[:, :, dy, dx], xp[:, :, dy : dy + h, dx : dx + width])
        acc += b.reshape(1, -1, 1, 1)
        shift = WEIGHT_BITS + (0 if i == 0 else ACT_BITS) - ACT_BITS
        x = (acc + (1 << (shift - 1))) >> shift
        if i < len(layers) - 1:
            x = torch.nn.functional.pixel_shuffle(torch.from_numpy(x), 2).numpy().clip(0, ACT_LIMIT)
    return np.clip((x + (1 << (ACT_BITS - 1))) >> ACT_BITS, 0, net.levels - 1)


def test_matches_int64_reference_and_threads(tiny):
    net = tiny.model.h_scale
    rng = np.random.default_rng(0)
    z = rng.integers(-40, 41, size=(1, 8, 3, 5))
    ref = _int64_reference(net, z)
    results = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        results.append(net.sigma_index(torch.from_numpy(z)).numpy())
    np.testing.assert_array_equal(results[0], ref)
    np.testing.assert_array_equal(results[1], ref)


def test_exact_at_extreme_inputs(shipped):
    """Worst-case |ẑ| = Z_LIMIT with the shipped weights stays exact (no float rounding)."""
    net = shipped.model.h_scale
    rng = np.random.default_rng(1)
    z = rng.choice([-Z_LIMIT, Z_LIMIT], size=(1, shipped.model.cfg.hyper_channels, 2, 2))
    np.testing.assert_array_equal(net.sigma_index(torch.from_numpy(z)).numpy(), _int64_reference(net, z))


def test_training_path_agrees_with_integer_path(shipped):
    """The fake-quantized float forward used in training rounds like the integer path, so it
    predicts the coded index (up to float32 accumulation)."""
    net = shipped.model.h_scale
    z = torch.randint(-3, 4, (1, shipped.model.cfg.hyper_channels, 4, 4), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        t = net.index_from_t(net(z.float())).long()
    agree = (t == net.sigma_index(z)).float().mean().item()
    assert agree > 0.999


def test_mixed_precision_training_forward(shipped):
    """Under a bfloat16 autocast (train --bf16) h_σ stays float32 and exact, and the codec's
    outputs are float32 close to the float32 forward."""
    model = shipped.model
    z = torch.randint(-3, 4, (1, model.cfg.hyper_channels, 4, 4)).float()
    x = torch.rand(1, 3, 64, 64)
    beta = torch.tensor([4.0])
    with torch.no_grad():
        t_ref = model.h_scale(z)
        torch.manual_seed(0)
        ref = model(x, beta)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            t = model.h_scale(z)
            torch.manual_seed(0)
            out = model(x, beta)
    assert t.dtype == torch.float32 and torch.equal(t, t_ref)
    assert out.x_hat.dtype == out.bits_y.dtype == torch.float32
    assert (out.x_hat - ref.x_hat).abs().mean() < 0.02
    assert abs(out.bits_y.item() / ref.bits_y.item() - 1) < 0.05
