"""Product photos: the thumbnail every screen shows, and picking an image on the device.

The photo lives in the public `product-images` bucket and the product keeps its public URL in
`images`, so any screen (or another app) shows it with a plain image request.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass

import flet as ft

from pocketbizz.app.api import Product

# The bucket takes `image/*` up to 5 MB (migration 0004): say so before sending.
MAX_PHOTO_BYTES = 5 * 1024 * 1024
EXTENSIONS = ["png", "jpg", "jpeg", "webp", "gif"]


class PhotoRefused(Exception):
    """The chosen file cannot be a product photo; `key` is the message's i18n key."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True)
class PickedPhoto:
    data: bytes
    content_type: str
    extension: str


def thumbnail(product: Product, size: int = 48) -> ft.Control:
    """The product's photo, or a neutral placeholder. Out of the accessibility tree: the
    control around it is named by the product (a tile's name stays the product's name)."""
    if product.photo_url is None:
        return ft.Container(
            ft.Icon(ft.Icons.IMAGE_OUTLINED, size=size * 0.5, color=ft.Colors.OUTLINE),
            width=size,
            height=size,
            alignment=ft.Alignment.CENTER,
            border_radius=6,
            bgcolor=ft.Colors.SURFACE_CONTAINER_HIGHEST,
        )
    return ft.Image(
        src=product.photo_url,
        width=size,
        height=size,
        fit=ft.BoxFit.COVER,
        border_radius=6,
        exclude_from_semantics=True,
        error_content=ft.Icon(ft.Icons.BROKEN_IMAGE_OUTLINED, size=size * 0.5),
    )


async def pick_photo(picker: ft.FilePicker) -> PickedPhoto | None:
    """One image chosen on the device, read into memory (`with_data`: in a browser the app's
    Python never sees a file path, and a device build works the same way). None when the
    user cancelled; PhotoRefused when the file cannot be a product photo."""
    files = await picker.pick_files(
        file_type=ft.FilePickerFileType.CUSTOM, allowed_extensions=EXTENSIONS, with_data=True
    )
    if not files or files[0].bytes is None:
        return None
    chosen = files[0]
    data = chosen.bytes or b""
    extension = chosen.name.rsplit(".", 1)[-1].lower() if "." in chosen.name else ""
    content_type = mimetypes.types_map.get(f".{extension}", "")
    if extension not in EXTENSIONS or not content_type.startswith("image/"):
        raise PhotoRefused("not_an_image")
    if len(data) > MAX_PHOTO_BYTES:
        raise PhotoRefused("photo_too_large")
    return PickedPhoto(data=data, content_type=content_type, extension=extension)
