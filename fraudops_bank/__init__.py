"""The bank side of the federated protocol, installable on its own (``pip install ./fraudops_bank``).

Everything a bank needs to take part in rounds where its data lives: the request signing, the
parameter and header encodings, the logistic-regression math, the client, its credentials and
two engines (NumPy over a file, Spark over a table). It imports nothing from the server's
packages; the server imports the protocol from here, so both sides share one definition.
Importing this package imports nothing else: the modules the server uses need only NumPy.
"""

__version__ = "0.1.0"
