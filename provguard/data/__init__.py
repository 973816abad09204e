"""Loaders for the real data sets provguard can use offline."""
from provguard.data.fashion_mnist import DatasetMissing, load_fashion_mnist

__all__ = ["DatasetMissing", "load_fashion_mnist"]
