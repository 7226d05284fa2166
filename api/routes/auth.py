"""``POST /auth/token``: OAuth2 password flow, so /docs can authorize."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from api.deps import StateDep
from db.errors import ServiceError

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
    responses={401: {"description": "Wrong email or password"}},
)
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], state: StateDep
) -> TokenResponse:
    try:
        pair = await state.auth.login(form.username, form.password)
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
