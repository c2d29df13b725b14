import { Body, Controller, Header, HttpCode, Post, UseGuards } from '@nestjs/common';
import { ApiConsumes, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiProblems } from '../common/api-problems.decorator';
import { Public } from './auth.decorators';
import { AuthService } from './auth.service';
import { TokenRequestDto, TokenResponseDto } from './dto/token.dto';
import { TokenRateLimitGuard } from './token-rate-limit.guard';

@ApiTags('auth')
@Controller()
export class AuthController {
  constructor(private readonly auth: AuthService) {}

  @Public()
  @Post('token')
  @HttpCode(200)
  // RFC 6749 §5.1: a token response must not be cached by anything in between.
  @Header('Cache-Control', 'no-store')
  @Header('Pragma', 'no-cache')
  @UseGuards(TokenRateLimitGuard)
  @ApiOperation({ operationId: 'issueToken', summary: 'Exchange a username and password for a bearer token', security: [] })
  @ApiConsumes('application/x-www-form-urlencoded', 'application/json')
  @ApiOkResponse({ type: TokenResponseDto })
  @ApiProblems(400, 'invalid_credentials', 'too_many_login_attempts', 'too_many_requests')
  issueToken(@Body() form: TokenRequestDto): Promise<TokenResponseDto> {
    return this.auth.issueToken(form);
  }
}
