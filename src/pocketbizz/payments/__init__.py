"""Payments through ToyyibPay (issue 10.2): PocketBizz subscriptions paid by FPX, settled only on
verified evidence (the callback's hash, or ToyyibPay's own answer to a re-query), once.

Routes at /webhooks/toyyibpay (the callback and the browser's return page); the `subscribe`
function is in the functions registry; the re-query is a periodic job. Nothing here logs in as
the owner: settlement runs on the request pool as pb_payments (payments.runtime).
"""
