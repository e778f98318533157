# The image every service of docker-compose.yaml runs (Airflow components, Celery workers, MLflow).
#
# Base: the official apache/airflow image whose tag names the exact Airflow release pinned in
# requirements.txt (3.3.2) on Python 3.11. An Astro Runtime tag (`3.3-N`) names only the Runtime
# release; which Airflow patch it ships has to be looked up per tag, and the compose file relies on
# the official image's entrypoint (`/entrypoint`: database wait, `airflow` commands, signal
# handling of Celery workers through DUMB_INIT_SETSID), as Airflow's own compose file does.
# Keep AIRFLOW_VERSION equal to the apache-airflow pin in requirements.txt.
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}

# torch's default Linux wheels pull several GB of CUDA libraries; the CPU build is enough for
# these classifiers. Override TORCH_INDEX_URL to use a mirror (or a GPU build).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

USER root
# libgomp1: OpenMP runtime of scikit-learn's HistGradientBoosting and torch (packages.txt).
COPY packages.txt /tmp/packages.txt
RUN apt-get update \
    && xargs -a /tmp/packages.txt apt-get install -y --no-install-recommends \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /tmp/packages.txt
USER airflow

# Direct dependencies, pinned; the whole tree is held by constraints.txt (its dev-only pins are
# harmless there). apache-airflow is re-pinned so pip can never move the image's Airflow.
COPY --chown=airflow:0 requirements.txt constraints.txt /tmp/relearn/
RUN pip install --no-cache-dir --extra-index-url "${TORCH_INDEX_URL}" \
        "apache-airflow==${AIRFLOW_VERSION}" -r /tmp/relearn/requirements.txt \
        -c /tmp/relearn/constraints.txt

# The relearn core and the Airflow plugin as a package (scheduler, triggerer and workers import
# it), the DAG bundle and the configuration. Only the runtime package: the local stack and demo
# (dev/, relearn-dev) stay out of the image.
COPY --chown=airflow:0 pyproject.toml README.md /opt/relearn/
COPY --chown=airflow:0 include/ /opt/relearn/include/
COPY --chown=airflow:0 plugins/ /opt/relearn/plugins/
RUN pip install --no-cache-dir --no-deps /opt/relearn
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 relearn.yaml /opt/airflow/relearn.yaml
ENV RELEARN_CONFIG=/opt/airflow/relearn.yaml
# MLflow's telemetry thread breaks requests when it cannot phone home (see relearn/__init__.py).
ENV MLFLOW_DISABLE_TELEMETRY=true
# Mount points of docker-compose.yaml's named volumes: created here, owned by the airflow user,
# so a new volume starts with this ownership and no service needs to run as root.
RUN mkdir -p /opt/airflow/auth /opt/airflow/mlartifacts
