import { Body, Controller, Get, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequireRole } from '../auth/auth.decorators';
import { ApiProblems } from '../common/api-problems.decorator';
import { UserRole } from '../common/user-role';
import { ImageListDto, ImageResponseDto, RegisterImageDto } from './dto/image.dto';
import { ImagesService } from './images.service';

@ApiTags('images')
@ApiBearerAuth()
@Controller('images')
export class ImagesController {
  constructor(private readonly images: ImagesService) {}

  @Post()
  @RequireRole(UserRole.Admin)
  @ApiOperation({ operationId: 'registerImage', summary: 'Register a base image file on the control plane (admin)' })
  @ApiCreatedResponse({ type: ImageResponseDto })
  @ApiProblems(400, 401, 403, 409)
  register(@Body() dto: RegisterImageDto): Promise<ImageResponseDto> {
    return this.images.register(dto);
  }

  @Get()
  @ApiOperation({ operationId: 'listImages', summary: 'The images a VM can be created from, by name' })
  @ApiOkResponse({ type: ImageListDto })
  @ApiProblems(401)
  list(): Promise<ImageListDto> {
    return this.images.list();
  }
}
