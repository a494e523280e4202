"""The broker's domain core: patients, orders, procedure steps and their state rules.

Nothing here imports a protocol library, SQL or an encoding: adapters translate to and
from these types, so the rules can be tested with plain objects.
"""
