# Astro Runtime 3.x (Airflow 3) on Python 3.11. Use the Runtime release that ships Airflow 3.3.x;
# `astro dev start` builds this image. (Not built in CI: the CI machine has no Docker engine.)
FROM astrocrpublic.azurecr.io/runtime:3.3-1-python-3.11

# The relearn core is installed as a package so the scheduler, triggerer and workers import it.
# Only the runtime package: the local stack and demo (dev/, relearn-dev) stay out of the image.
COPY --chown=astro:0 pyproject.toml README.md /usr/local/airflow/
COPY --chown=astro:0 include/ /usr/local/airflow/include/
COPY --chown=astro:0 plugins/ /usr/local/airflow/plugins/
RUN pip install --no-cache-dir --no-deps /usr/local/airflow
ENV RELEARN_CONFIG=/usr/local/airflow/relearn.yaml
