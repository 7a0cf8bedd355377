"""Receipts as documents: the PDF and ESC/POS renderings of a sale's receipt, and its public
e-receipt page at `/r/{token}` (the function itself is `functions/receipt.py`)."""
