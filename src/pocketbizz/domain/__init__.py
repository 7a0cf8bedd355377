"""The PocketBizz domain: sales, stock, analytics, receipts.

Sales and stock are computed in SQL (migration 0003); `money` mirrors the sale arithmetic in
Python for tests and for explaining a receipt's figures.
"""

from pocketbizz.domain.money import Line, SaleAmounts, cash_rounding, price_sale

__all__ = ["Line", "SaleAmounts", "cash_rounding", "price_sale"]
