"""The parts of a transaction's repository, one per aggregate."""
