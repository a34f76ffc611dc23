# The README's two commands. Everything else lives in scripts/ so it also runs without make.
.PHONY: demo test
demo:
	scripts/demo
test:
	scripts/test
