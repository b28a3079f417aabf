.PHONY: run test lint bootstrap

## Install everything and start web + worker + beat on the embedded default (SQLite, no broker server).
run:
	bash scripts/run.sh

## Install everything and run the whole suite (PostgreSQL/Redis when DATABASE_URL/CELERY_BROKER_URL are set).
test:
	bash scripts/test.sh

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy .

bootstrap:
	bash scripts/bootstrap.sh
