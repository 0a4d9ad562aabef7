# Onsite in a container: the locked dependencies (requirements.txt), the bot, the judge and the bank.
#   docker build -t onsite .
#   docker run --rm -it -v onsite-data:/data onsite console            the local console
#   docker run -d --env-file .env -v onsite-data:/data \
#       --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
#       --security-opt systempaths=unconfined onsite discord           (or: slack)
# The judge's bwrap tier needs those three options (see "Containers" in SECURITY.md); without them it
# falls back to the weaker rlimit tier and says so at start. compose.yaml does all of this.
FROM python:3.11-slim-bookworm

# bubblewrap: the judge's sandbox. Nothing else from the distribution is needed at run time.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/*

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Exactly what CI tested: every package pinned with its hashes. The bot runs from /app, not installed.
WORKDIR /app
COPY requirements.txt ./
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --require-hashes -r requirements.txt

# A non-root user (uid 10001) owns the database volume; the code and the bank are root's, read-only to it.
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin onsite
RUN mkdir -p /data && chown 10001:10001 /data && chmod 0700 /data
COPY bot ./bot
COPY graders ./graders
COPY questions ./questions

ENV ONSITE_DB=/data/onsite.db \
    XDG_DATA_HOME=/data \
    HOME=/data
VOLUME ["/data"]
USER 10001:10001
ENTRYPOINT ["python", "-m", "bot"]
CMD ["discord"]
