# One image for every process: `portal serve`, `portal worker`, `portal migrate`.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /srv/portal
COPY pyproject.toml requirements.lock README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
# The locked tree, hashes checked; then the project itself, editable, so templates, static files and
# migrations are found beside the code.
RUN pip install --require-hashes -r requirements.lock && pip install --no-deps --no-build-isolation -e .
RUN useradd --system --uid 10001 portal && mkdir -p var && chown portal var
USER portal
EXPOSE 8000
CMD ["portal", "serve", "--host", "0.0.0.0", "--port", "8000"]
