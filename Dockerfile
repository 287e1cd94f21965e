# The occi-server service image.
FROM python:3.11-slim-bookworm

RUN useradd --system --home-dir /var/lib/occi --create-home occi
WORKDIR /opt/occi-server
COPY pyproject.toml README.md ./
COPY occi_server ./occi_server
COPY schemas ./schemas
RUN pip install --no-cache-dir ".[postgresql]"

USER occi
ENV OCCI_DATA_DIR=/var/lib/occi \
    OCCI_LISTEN=0.0.0.0:8080 \
    OCCI_BACKEND=simulated
VOLUME ["/var/lib/occi"]
EXPOSE 8080
CMD ["occi-server", "serve"]
