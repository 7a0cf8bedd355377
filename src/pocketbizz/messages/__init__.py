"""Messages to a business's customers: receipts over the WhatsApp Cloud API (template with the
PDF as its document header), the `wa.me` fallback link, and the webhook that reports delivery."""
