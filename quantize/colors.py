"""Vectorized color space conversions between sRGB, CIE XYZ, CIELAB and OKLab.

Every function accepts an array of shape ``(..., 3)`` (any leading shape, any
numeric dtype) and returns a new float64 array of the same shape. sRGB values
are gamma-encoded and scaled to ``0..1`` unless stated otherwise.

Inverse conversions never clip: out-of-gamut inputs give sRGB values outside
``0..1`` and it is the caller's job to clip and round (see `space_to_rgb8`).

The working spaces of the clustering are the entries of `COLOR_SPACES`, one
`ColorSpace` each (name, from sRGB, to sRGB, and optionally an exact fast
path for 8-bit input).  To add a space, write its two conversions, add one
entry there and its name to `quantize.vocabulary.Space`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from quantize.vocabulary import SPACES, registry

__all__ = [
    "COLOR_SPACES",
    "SPACES",
    "ColorSpace",
    "from_space",
    "lab_to_srgb",
    "linear_to_srgb",
    "oklab_to_srgb",
    "rgb8_to_lab",
    "rgb8_to_space",
    "space_to_rgb8",
    "srgb_to_lab",
    "srgb_to_linear",
    "srgb_to_oklab",
    "srgb_to_xyz",
    "to_space",
    "xyz_to_srgb",
]

FloatArray = NDArray[np.float64]

# Linear sRGB -> XYZ for the D65 white (IEC 61966-2-1 primaries, 7 decimals).
_SRGB_TO_XYZ: Final[FloatArray] = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
# Inverting numerically (rather than using a rounded published inverse) keeps
# XYZ round trips accurate to float64 precision.
_XYZ_TO_SRGB: Final[FloatArray] = np.asarray(np.linalg.inv(_SRGB_TO_XYZ), dtype=np.float64)

# The white point is derived from the matrix (XYZ of RGB = 1,1,1) so that sRGB
# white lands exactly on L=100, a=b=0. It equals (0.95047, 1.0, 1.08883) to
# within 1e-7.
_WHITE_D65: Final[FloatArray] = _SRGB_TO_XYZ.sum(axis=1)

# CIE constants written as exact ratios instead of the old rounded 0.008856 and
# 903.3, which make the two branches of f(t) disagree at the joint.
_LAB_EPSILON: Final[float] = 216.0 / 24389.0
_LAB_KAPPA: Final[float] = 24389.0 / 27.0
# f(t) at t == epsilon; above it the cube-root branch applies.
_LAB_F_EPSILON: Final[float] = 6.0 / 29.0

# Björn Ottosson's OKLab matrices: linear sRGB -> LMS cone response (M1), and
# cube-rooted LMS -> Lab (M2). Inverses are computed for the same reason as above.
_OKLAB_M1: Final[FloatArray] = np.array(
    [
        [0.4122214708, 0.5363325363, 0.0514459929],
        [0.2119034982, 0.6806995451, 0.1073969566],
        [0.0883024619, 0.2817188376, 0.6299787005],
    ]
)
_OKLAB_M2: Final[FloatArray] = np.array(
    [
        [0.2104542553, 0.7936177850, -0.0040720468],
        [1.9779984951, -2.4285922050, 0.4505937099],
        [0.0259040371, 0.7827717662, -0.8086757660],
    ]
)
_OKLAB_M1_INV: Final[FloatArray] = np.asarray(np.linalg.inv(_OKLAB_M1), dtype=np.float64)
_OKLAB_M2_INV: Final[FloatArray] = np.asarray(np.linalg.inv(_OKLAB_M2), dtype=np.float64)


def _as_triples(x: ArrayLike) -> FloatArray:
    """Return ``x`` as float64 with a trailing axis of length 3, or raise ValueError."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[-1] != 3:
        raise ValueError(f"expected an array of shape (..., 3), got {arr.shape}")
    return arr


def _apply_matrix(x: FloatArray, matrix: FloatArray) -> FloatArray:
    """Multiply every 3-vector along the last axis of ``x`` by ``matrix``."""
    return np.asarray(x @ matrix.T, dtype=np.float64)


def srgb_to_linear(rgb: ArrayLike) -> FloatArray:
    """Decode gamma-encoded sRGB to linear light (IEC 61966-2-1).

    Parameters
    ----------
    rgb : array_like, shape (..., 3)
        sRGB values, nominally in ``0..1``.

    Returns
    -------
    ndarray of float64, shape (..., 3)
        Linear-light RGB.

    Notes
    -----
    The curve is extended to negative inputs by odd symmetry, so values
    slightly outside the gamut (e.g. from an unclipped inverse conversion)
    stay finite instead of turning into NaN.
    """
    c = _as_triples(rgb)
    mag = np.abs(c)
    lin = np.where(mag <= 0.04045, mag / 12.92, ((mag + 0.055) / 1.055) ** 2.4)
    return np.asarray(np.copysign(lin, c), dtype=np.float64)


def linear_to_srgb(lin: ArrayLike) -> FloatArray:
    """Encode linear-light RGB with the sRGB transfer curve (IEC 61966-2-1).

    Parameters
    ----------
    lin : array_like, shape (..., 3)
        Linear-light RGB, nominally in ``0..1``.

    Returns
    -------
    ndarray of float64, shape (..., 3)
        Gamma-encoded sRGB, not clipped. Negative inputs are handled by odd
        symmetry, mirroring `srgb_to_linear`.
    """
    c = _as_triples(lin)
    mag = np.abs(c)
    enc = np.where(mag <= 0.0031308, 12.92 * mag, 1.055 * mag ** (1.0 / 2.4) - 0.055)
    return np.asarray(np.copysign(enc, c), dtype=np.float64)


def srgb_to_xyz(rgb: ArrayLike) -> FloatArray:
    """Convert sRGB to CIE XYZ (D65 white, Y of white = 1).

    Parameters
    ----------
    rgb : array_like, shape (..., 3)
        sRGB values in ``0..1``.

    Returns
    -------
    ndarray of float64, shape (..., 3)
        XYZ tristimulus values.
    """
    return _apply_matrix(srgb_to_linear(rgb), _SRGB_TO_XYZ)


def xyz_to_srgb(xyz: ArrayLike) -> FloatArray:
    """Convert CIE XYZ (D65, Y of white = 1) to sRGB.

    Parameters
    ----------
    xyz : array_like, shape (..., 3)
        XYZ tristimulus values.

    Returns
    -------
    ndarray of float64, shape (..., 3)
        sRGB values, not clipped to ``0..1``.
    """
    return linear_to_srgb(_apply_matrix(_as_triples(xyz), _XYZ_TO_SRGB))


def _lab_f(t: FloatArray) -> FloatArray:
    """CIELAB companding: cube root above epsilon, a linear segment below it."""
    return np.where(t > _LAB_EPSILON, np.cbrt(t), (_LAB_KAPPA * t + 16.0) / 116.0)


def _lab_f_inv(f: FloatArray) -> FloatArray:
    """Inverse of `_lab_f`; thresholding on f is equivalent to thresholding on t."""
    return np.where(f > _LAB_F_EPSILON, f**3, (116.0 * f - 16.0) / _LAB_KAPPA)


def srgb_to_lab(rgb: ArrayLike) -> FloatArray:
    """Convert sRGB to CIELAB (D65 reference white).

    Parameters
    ----------
    rgb : array_like, shape (..., 3)
        sRGB values in ``0..1``.

    Returns
    -------
    ndarray of float64, shape (..., 3)
        ``(L*, a*, b*)`` with L* in ``0..100`` for in-gamut colors.
    """
    return _linear_to_lab(srgb_to_linear(rgb))


def _linear_to_lab(lin: FloatArray) -> FloatArray:
    """CIELAB of linear-light sRGB, shape (..., 3)."""
    f = _lab_f(_apply_matrix(lin, _SRGB_TO_XYZ) / _WHITE_D65)
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    return np.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def lab_to_srgb(lab: ArrayLike) -> FloatArray:
    """Convert CIELAB (D65 reference white) to sRGB.

    Parameters
    ----------
    lab : array_like, shape (..., 3)
        ``(L*, a*, b*)`` values.

    Returns
    -------
    ndarray of float64, shape (..., 3)
        sRGB values, not clipped to ``0..1``.
    """
    arr = _as_triples(lab)
    fy = (arr[..., 0] + 16.0) / 116.0
    fx = fy + arr[..., 1] / 500.0
    fz = fy - arr[..., 2] / 200.0
    xyz = _lab_f_inv(np.stack([fx, fy, fz], axis=-1)) * _WHITE_D65
    return xyz_to_srgb(xyz)


def srgb_to_oklab(rgb: ArrayLike) -> FloatArray:
    """Convert sRGB to OKLab (Ottosson, 2020).

    Parameters
    ----------
    rgb : array_like, shape (..., 3)
        sRGB values in ``0..1``.

    Returns
    -------
    ndarray of float64, shape (..., 3)
        ``(L, a, b)`` with L in ``0..1`` for in-gamut colors.
    """
    return _linear_to_oklab(srgb_to_linear(rgb))


def _linear_to_oklab(lin: FloatArray) -> FloatArray:
    """OKLab of linear-light sRGB, shape (..., 3)."""
    lms = _apply_matrix(lin, _OKLAB_M1)
    # np.cbrt (unlike ** (1/3)) is defined for the small negative LMS values
    # that out-of-gamut inputs can produce.
    return _apply_matrix(np.cbrt(lms), _OKLAB_M2)


def oklab_to_srgb(lab: ArrayLike) -> FloatArray:
    """Convert OKLab to sRGB.

    Parameters
    ----------
    lab : array_like, shape (..., 3)
        OKLab ``(L, a, b)`` values.

    Returns
    -------
    ndarray of float64, shape (..., 3)
        sRGB values, not clipped to ``0..1``.
    """
    lms_root = _apply_matrix(_as_triples(lab), _OKLAB_M2_INV)
    return linear_to_srgb(_apply_matrix(lms_root**3, _OKLAB_M1_INV))


def _copy_triples(x: ArrayLike) -> FloatArray:
    """The identity conversion of the ``rgb`` space: a float64 copy, shape (..., 3)."""
    return _as_triples(x).copy()


def _rgb8_to_rgb(rgb8: NDArray[np.uint8]) -> FloatArray:
    """``rgb8 / 255`` as one float64 array, not three (cast, quotient, copy)."""
    # 33 MB each for the 1.4M colors of a 12 MP photo, all of it fresh memory.
    return np.divide(rgb8, 255.0, dtype=np.float64)


def _rgb8_to_lab(rgb8: NDArray[np.uint8]) -> FloatArray:
    return _linear_to_lab(_linear_levels()[rgb8])


def _rgb8_to_oklab(rgb8: NDArray[np.uint8]) -> FloatArray:
    return _linear_to_oklab(_linear_levels()[rgb8])


@dataclass(frozen=True)
class ColorSpace:
    """One working space of the clustering: its name and its conversions.

    Attributes
    ----------
    name : str
        The name ``--space`` and the report use; one of `SPACES`.
    from_srgb : callable
        sRGB in ``0..1``, array_like of shape (..., 3) -> float64 (..., 3).
    to_srgb : callable
        Its inverse, not clipped: float64 (..., 3) -> sRGB (..., 3).
    from_rgb8 : callable or None
        A faster conversion of uint8 sRGB (..., 3) that gives bit for bit
        what ``from_srgb(rgb8 / 255)`` gives (tested for every entry); None
        to use that.
    """

    name: str
    from_srgb: Callable[[ArrayLike], FloatArray]
    to_srgb: Callable[[ArrayLike], FloatArray]
    from_rgb8: Callable[[NDArray[np.uint8]], FloatArray] | None = None


#: Every working space by name, in the order of `quantize.vocabulary.SPACES`.
COLOR_SPACES: Final[Mapping[str, ColorSpace]] = registry(
    "color space",
    SPACES,
    [
        ColorSpace("rgb", _copy_triples, _copy_triples, _rgb8_to_rgb),
        ColorSpace("lab", srgb_to_lab, lab_to_srgb, _rgb8_to_lab),
        ColorSpace("oklab", srgb_to_oklab, oklab_to_srgb, _rgb8_to_oklab),
        ColorSpace("linear-rgb", srgb_to_linear, linear_to_srgb),
    ],
)


def _space(space: str) -> ColorSpace:
    """The entry of ``space``; ValueError unless it is one of `SPACES`."""
    try:
        return COLOR_SPACES[space]
    except (KeyError, TypeError):
        raise ValueError(f"unknown color space {space!r}; expected one of {SPACES}") from None


def to_space(rgb01: ArrayLike, space: str) -> FloatArray:
    """Convert sRGB in ``0..1`` to the working space used for clustering.

    Parameters
    ----------
    rgb01 : array_like, shape (..., 3)
        sRGB values in ``0..1``.
    space : str
        Target space (a key of `COLOR_SPACES`); ``"rgb"`` returns a float64
        copy of the input.

    Returns
    -------
    ndarray of float64, shape (..., 3)
        Coordinates in ``space``.

    Raises
    ------
    ValueError
        If ``space`` is not in `SPACES` or the input is not ``(..., 3)``.
    """
    return _space(space).from_srgb(rgb01)


def from_space(points: ArrayLike, space: str) -> FloatArray:
    """Convert working-space coordinates back to sRGB in ``0..1`` (not clipped).

    Parameters
    ----------
    points : array_like, shape (..., 3)
        Coordinates in ``space``.
    space : str
        Space the points are expressed in (a key of `COLOR_SPACES`).

    Returns
    -------
    ndarray of float64, shape (..., 3)
        sRGB values; may fall outside ``0..1`` for out-of-gamut points.

    Raises
    ------
    ValueError
        If ``space`` is not in `SPACES` or the input is not ``(..., 3)``.
    """
    return _space(space).to_srgb(points)


def rgb8_to_space(rgb8: ArrayLike, space: str) -> FloatArray:
    """Convert 8-bit sRGB (``0..255``) to ``space``.

    Parameters
    ----------
    rgb8 : array_like, shape (..., 3)
        8-bit sRGB values, typically ``uint8`` of shape ``(n, 3)``.
    space : str
        Target space; ``"rgb"`` yields values in ``0..1``.

    Returns
    -------
    ndarray of float64, shape (..., 3)
        Coordinates in ``space``; for uint8 input exactly (bit for bit) what
        ``to_space(rgb8 / 255, space)`` gives.
    """
    arr = np.asarray(rgb8)
    if arr.dtype != np.uint8:
        return to_space(np.asarray(arr, dtype=np.float64) / 255.0, space)
    entry = _space(space)
    if arr.ndim == 0 or arr.shape[-1] != 3:
        raise ValueError(f"expected an array of shape (..., 3), got {arr.shape}")
    if entry.from_rgb8 is None:
        return entry.from_srgb(np.divide(arr, 255.0, dtype=np.float64))
    return entry.from_rgb8(arr)


def rgb8_to_lab(rgb8: ArrayLike) -> FloatArray:
    """Convert 8-bit sRGB (``0..255``) to CIELAB (D65), like ``srgb_to_lab(rgb8 / 255)``.

    Parameters
    ----------
    rgb8 : array_like, shape (..., 3)
        8-bit sRGB values; uint8 input takes a table lookup for the transfer
        curve (the same numbers, computed once for the 256 levels).

    Returns
    -------
    ndarray of float64, shape (..., 3)
        ``(L*, a*, b*)``.
    """
    return rgb8_to_space(rgb8, "lab")


@functools.cache
def _linear_levels() -> FloatArray:
    """`srgb_to_linear` of the 256 levels of an 8-bit channel, shape (256,).

    The transfer curve is computed per element, so looking values up here
    gives the same bits as applying it to ``rgb8 / 255`` -- without the
    three powers per color that dominate a Lab conversion.
    """
    levels = np.arange(256, dtype=np.float64) / 255.0
    table = srgb_to_linear(np.repeat(levels[:, None], 3, axis=1))[:, 0].copy()
    table.flags.writeable = False
    return table


def space_to_rgb8(points: ArrayLike, space: str) -> NDArray[np.uint8]:
    """Convert ``space`` coordinates to 8-bit sRGB, clipping out-of-gamut values.

    Parameters
    ----------
    points : array_like, shape (..., 3)
        Coordinates in ``space``.
    space : str
        Space the points are expressed in.

    Returns
    -------
    ndarray of uint8, shape (..., 3)
        sRGB values, clipped to ``0..1`` and rounded to the nearest of 256 levels.
    """
    rgb01 = np.clip(from_space(points, space), 0.0, 1.0)
    return np.rint(rgb01 * 255.0).astype(np.uint8)
