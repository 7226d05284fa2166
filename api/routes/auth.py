"""``POST /auth/token``: OAuth2 password flow, so /docs can authorize."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from api.deps import StateDep, client_key
from db.errors import ServiceError
from db.session import unit_of_work

router = APIRouter(tags=["auth"])


class TokenResponse(BaseModel):
    access_token: str = Field(examples=["eyJhbGciOiJIUzI1NiIsImtpZCI6..."])
    refresh_token: str = Field(examples=["eyJhbGciOiJIUzI1NiIsImtpZCI6..."])
    token_type: str = Field(default="bearer", examples=["bearer"])
    expires_in: int = Field(examples=[900], description="Seconds the access token lives.")


@router.post(
    "/auth/token",
    response_model=TokenResponse,
    summary="Log in with the OAuth2 password flow",
    responses={
        401: {"description": "Wrong email or password"},
        429: {"description": "Too many attempts from this address; see Retry-After"},
    },
)
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], state: StateDep, request: Request
) -> TokenResponse:
    retry_after = await state.limiter.login(client_key(request))
    if retry_after is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail="Too many login attempts",
            headers={"Retry-After": str(int(retry_after))},
        )
    try:
        pair = await state.auth.login(
            lambda: unit_of_work(state.write_factory), form.username, form.password
        )
    except ServiceError:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="Wrong email or password",
            headers={"WWW-Authenticate": "Bearer"},
        ) from None
    return TokenResponse(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
    )
