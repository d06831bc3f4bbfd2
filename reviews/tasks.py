from celery import shared_task

from reviews import services


@shared_task(name="reviews.tasks.publish_due")
def publish_due() -> int:
    """Publish the reviews of every round whose window has closed (double-blind until then)."""
    return services.reviews_publish_due()
