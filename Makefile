# The README's two commands. Everything else lives in scripts/ so it also runs without make.
# Options pass through ARGS: make demo ARGS="--records 5000", make test ARGS='-m "not slow"'.
ARGS ?=
.PHONY: demo test
demo:
	scripts/demo $(ARGS)
test:
	scripts/test $(ARGS)
