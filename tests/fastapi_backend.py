"""A real upstream that publishes its own OpenAPI document: a small FastAPI app.

``python -m uvicorn tests.fastapi_backend:users --port N`` (and ``:orders``):
both define a component named ``Item``, differently, so the gateway's merge
must keep them apart.
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel


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
