"""A small ESC/POS decoder for tests: printer bytes back to text lines and QR payloads.

It knows the commands the receipt uses (and a few neighbours) and fails on anything else, so
an unexpected command is a test failure rather than stray characters in the text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ESC, GS, LF = 0x1B, 0x1D, 0x0A
# ESC commands with one parameter byte: ! (print mode), E (bold), a (align), t (code page),
# d (feed n lines), - (underline), M (font).
_ESC_ONE = {ord(c) for c in "!Eatd-M"}


@dataclass
class Decoded:
    lines: list[str] = field(default_factory=list)
    qr: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)


def decode(data: bytes) -> Decoded:
    out = Decoded()
    text = bytearray()
    qr_store = b""
    i = 0
    while i < len(data):
        byte = data[i]
        if byte == LF:
            out.lines.append(text.decode("cp437"))
            text.clear()
            i += 1
        elif byte == ESC:
            command = data[i + 1]
            if command == ord("@"):
                out.commands.append("init")
                i += 2
            elif command in _ESC_ONE:
                out.commands.append(f"ESC {chr(command)} {data[i + 2]}")
                i += 3
            else:
                raise ValueError(f"unknown ESC {command:#x} at {i}")
        elif byte == GS:
            command = data[i + 1]
            if command == ord("V"):  # cut: m = 0/1/48/49, or 65/66 followed by a feed
                mode = data[i + 2]
                out.commands.append(f"cut {mode}")
                i += 4 if mode in (65, 66) else 3
            elif command == ord("!"):
                out.commands.append(f"GS ! {data[i + 2]}")
                i += 3
            elif command == ord("(") and data[i + 2] == ord("k"):
                size = data[i + 3] | data[i + 4] << 8
                body = data[i + 5 : i + 5 + size]
                cn, fn = body[0], body[1]
                if cn == 0x31 and fn == 0x50:  # store the symbol's data
                    qr_store = bytes(body[3:])
                elif cn == 0x31 and fn == 0x51:  # print the stored symbol
                    out.qr.append(qr_store.decode("ascii"))
                out.commands.append(f"QR fn {fn}")
                i += 5 + size
            else:
                raise ValueError(f"unknown GS {command:#x} at {i}")
        elif byte < 0x20:
            raise ValueError(f"unexpected control byte {byte:#x} at {i}")
        else:
            text.append(byte)
            i += 1
    if text:
        out.lines.append(text.decode("cp437"))
    return out
