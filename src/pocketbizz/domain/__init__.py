"""The PocketBizz domain: sales, stock, analytics, receipts."""
