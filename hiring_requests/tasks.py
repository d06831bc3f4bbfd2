from typing import Any

from celery import shared_task

from hiring_requests import services


@shared_task(
    name="hiring_requests.tasks.match_request",
    soft_time_limit=30,
    time_limit=45,
    recovered_by="hiring_requests.sweep",  # the clock sweep runs matching for every active request
)
def match_request(request_id: int) -> int:
    return services.matching_run(request_id=request_id)


@shared_task(name="hiring_requests.tasks.sweep", soft_time_limit=50, time_limit=58)
def sweep() -> dict[str, Any]:
    return services.clock_sweep()
