# syntax=docker/dockerfile:1
# Build stage: compile wheels with the build tools; none of them reach the final image.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:$PATH" PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md ./
COPY api ./api
COPY schema ./schema
COPY db ./db
RUN pip install --no-compile .

# Final stage: the virtualenv only, run as an unprivileged user.
FROM python:3.11-slim-bookworm
ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    STOCKROOM_ENV=prod \
    STOCKROOM_UPLOAD_DIR=/data/uploads \
    STOCKROOM_DATABASE_URL=sqlite+aiosqlite:////data/stockroom.db
COPY --from=build /opt/venv /opt/venv
RUN useradd --system --uid 10001 --home-dir /data --create-home stockroom
USER 10001
WORKDIR /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
CMD ["stockroom", "serve", "--host", "0.0.0.0", "--port", "8000"]
