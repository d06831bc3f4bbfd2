from ninja import Router

router = Router(tags=["hiring_requests"])
