"""lgo-hwsim: virtual readers, cards, scanners, tokens and national services."""

__version__ = "0.1.0"
