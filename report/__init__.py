"""The LaTeX derivation report (`genverify report`)."""
