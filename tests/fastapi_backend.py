"""A real upstream that publishes its own OpenAPI document: a small FastAPI app.

``python -m uvicorn tests.fastapi_backend:users --port N`` (and ``:orders``):
both define a component named ``Item``, differently, so the gateway's merge
must keep them apart. ``:shop`` is a service the gateway validates requests
for, with the document FastAPI makes from its models (OpenAPI 3.1).
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field


class Item(BaseModel):  # the users service's Item
    id: int
    name: str


users = FastAPI(title="users")


@users.get("/users/{user_id}", response_model=Item, operation_id="get_user")
def get_user(user_id: int) -> Item:
    if user_id != 1:
        raise HTTPException(404, "no such user")
    return Item(id=1, name="Ada")


@users.post("/users", response_model=Item, operation_id="create_user")
def create_user(item: Item) -> Item:
    return item


orders = FastAPI(title="orders")


class Orders:
    class Item(BaseModel):  # the orders service's own, different, Item
        sku: str
        quantity: int


@orders.get("/orders/{order_id}", response_model=Orders.Item, operation_id="get_order")
def get_order(order_id: int) -> Orders.Item:
    return Orders.Item(sku=f"sku-{order_id}", quantity=1)


# -- a service validated by the gateway (tests/test_validation.py) ------------------

shop = FastAPI(title="shop")
#: what reached the shop, for the tests to read (GET /received, not documented)
received: list[dict] = []


class Line(BaseModel):
    model_config = {"extra": "forbid"}
    qty: int = Field(ge=1)


class Order(BaseModel):
    model_config = {"extra": "forbid"}
    sku: str = Field(min_length=1, max_length=20)
    items: list[Line] = Field(min_length=1)
    note: str | None = None


@shop.post("/orders", response_model=Order, operation_id="create_order")
async def create_shop_order(order: Order, request: Request) -> Order:
    received.append({"path": "/orders", "body": (await request.body()).decode()})
    return order


@shop.get("/orders", operation_id="list_orders")
def list_shop_orders(ids: list[int] = Query(default=[]), limit: int = Query(10, ge=1, le=100)
                ) -> dict[str, list[int] | int]:
    received.append({"path": "/orders", "ids": ids, "limit": limit})
    return {"ids": ids, "limit": limit}


@shop.get("/orders/{order_id}", response_model=Order, operation_id="get_order",
          responses={404: {"description": "no such order"}})
def get_shop_order(order_id: int) -> JSONResponse:
    received.append({"path": f"/orders/{order_id}"})
    if order_id == 13:  # drifted: not what the document promises (sku is missing)
        return JSONResponse({"items": [{"qty": 1}]})
    return JSONResponse({"sku": f"sku-{order_id}", "items": [{"qty": 1}]})


@shop.get("/received", include_in_schema=False)
def what_was_received() -> list[dict]:
    return received


@shop.delete("/received", include_in_schema=False)
def forget() -> None:
    received.clear()
