"""Progress bars on every long step (tqdm), silenced with ``show=False``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(
    items: Iterable[T], desc: str, show: bool = True, total: int | None = None
) -> Iterator[T]:
    from tqdm.auto import tqdm

    return iter(
        tqdm(items, desc=desc, disable=not show, leave=False, total=total, dynamic_ncols=True)
    )
