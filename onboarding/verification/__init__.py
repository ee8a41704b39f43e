"""Pure verification engines for driver onboarding: plain data in, plain data out, no Django.

``mrz`` parses and repairs machine-readable zones, ``ocr`` reads them (and the visual zone) from
images, ``pdf417`` reads US licence barcodes, ``faces`` compares faces, ``liveness`` judges an
active challenge, ``vehicles`` and ``vin`` check a driver's vehicle. The onboarding services
call these and store the results as decisions.
"""
