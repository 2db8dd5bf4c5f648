"""FID: known answers of the Fréchet distance and the cached, deterministic feature network."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from torch import nn

from infogan.data import digits
from infogan.metrics import fid


class _Pixels(nn.Module):
    """Features = 8 fixed pixels: FID then is the Fréchet distance of those pixel statistics."""

    num_features = 8

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.flatten(1)[:, :8].double()


def _images(n: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, 1, 4, 4, generator=torch.Generator().manual_seed(seed)) + shift


def test_set_with_itself_is_zero_and_grows_with_shift() -> None:
    real = _images(2000, 0)
    assert fid.frechet_distance(_Pixels(), real, real) == pytest.approx(0.0, abs=1e-6)
    values = [fid.frechet_distance(_Pixels(), real, _images(2000, 1, shift)) for shift in (0.0, 0.5, 1.0, 2.0)]
    assert values == sorted(values) and values[0] < 0.1
    # A mean shift of s in each of 8 independent unit-variance features adds 8 s^2.
    assert values[3] == pytest.approx(8 * 2.0**2, rel=0.05)


def test_reference_keeps_real_features_and_matches_a_fresh_computation(monkeypatch: pytest.MonkeyPatch) -> None:
    net = _Pixels()
    real = _images(500, 0)
    reference = fid.FIDReference(net, real)
    seen: list[int] = []
    monkeypatch.setattr(net, "forward", lambda images: (seen.append(len(images)), _Pixels.forward(net, images))[1])
    for shift in (0.0, 1.0, 0.5):
        fake = _images(300, 2, shift)
        assert reference(fake) == pytest.approx(fid.frechet_distance(_Pixels(), real, fake), rel=1e-9, abs=1e-9)
    assert seen == [300, 300, 300]  # only the generated sets went through the feature net


def test_too_few_images_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        fid.frechet_distance(_Pixels(), _images(1, 0), _images(5, 1))


def test_feature_net_is_cached_deterministic_and_named_by_hash(tmp_path: Path) -> None:
    data = digits.load(image_size=28)
    net_a, id_a = fid.load_or_train_feature_net(data, tmp_path / "a", steps=3)
    net_b, id_b = fid.load_or_train_feature_net(data, tmp_path / "b", steps=3)
    assert id_a == id_b and id_a.startswith("lenet-digits28@")
    cached = list((tmp_path / "a").glob("*.pt"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    _, id_again = fid.load_or_train_feature_net(data, tmp_path / "a", steps=3)
    assert id_again == id_a and cached[0].stat().st_mtime_ns == mtime  # loaded, not retrained
    _, id_other = fid.load_or_train_feature_net(data, tmp_path / "a", steps=4)
    assert id_other != id_a  # another training budget is another extractor
    images = data.images[:16]
    assert net_a(images).shape == (16, fid.NUM_FEATURES)
    # The same name drawn another way (dSprites' published file) never reuses the other's net.
    data.source = "npz"
    fid.load_or_train_feature_net(data, tmp_path / "a", steps=3)
    assert (tmp_path / "a" / f"lenet-digits-npz28-v{fid.FEATURE_NET_VERSION}-s3.pt").is_file()


def test_concurrent_trials_train_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = digits.load(image_size=28)
    calls = []
    real_train = fid.train_feature_net

    def counting(*args, **kwargs):
        calls.append(1)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(fid, "train_feature_net", counting)
    ids: list[str] = []
    threads = [threading.Thread(target=lambda: ids.append(fid.load_or_train_feature_net(data, tmp_path, 2)[1]))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(set(ids)) == 1


def test_trained_features_separate_classes(tmp_path: Path) -> None:
    data = digits.load(image_size=28)
    net, _ = fid.load_or_train_feature_net(data, tmp_path, steps=60)
    zeros, ones = data.images[data.labels == 0][:100], data.images[data.labels == 1][:100]
    same = fid.frechet_distance(net, zeros[:50], zeros[50:])
    different = fid.frechet_distance(net, zeros, ones)
    assert different > 3 * same


def test_inception_without_weights_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="eval.inception_weights"):
        fid.inception_feature_net(None)
    with pytest.raises(ValueError, match="no such file"):
        fid.inception_feature_net(str(tmp_path / "missing.pth"))
