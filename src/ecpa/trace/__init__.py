"""Traceability of marketplace batches: GS1 EPCIS 2.0 events identified by their canonical
event hash, EPCIS 2.0 JSON export, and a public batch page behind a GS1 Digital Link QR code."""
