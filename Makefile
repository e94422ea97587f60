# Shortcuts for tasks.py (which needs only Python 3.11).
.PHONY: run test lint eval bench lock
run:
	python3 tasks.py run
test:
	python3 tasks.py test
lint:
	python3 tasks.py lint
eval:
	python3 tasks.py eval
bench:
	python3 tasks.py bench
lock:
	python3 tasks.py lock
