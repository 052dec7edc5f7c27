"""Fitting one signal: coordinate networks, value / gradient / Laplacian fits, images of a fitted field,
finite-difference targets, bundled photos and signed distance functions."""
