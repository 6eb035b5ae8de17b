"""Coverage-guided fuzz harnesses (atheris/libFuzzer) for the gateway's input parsers."""
