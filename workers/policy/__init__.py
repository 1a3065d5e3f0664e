"""Pure decisions of the workers: no Celery, Redis, boto3 or requests; tested as tables."""
