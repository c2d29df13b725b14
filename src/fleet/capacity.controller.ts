import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiProblems } from '../common/api-problems.decorator';
import { CapacityService } from './capacity.service';
import { CapacityResponseDto } from './dto/capacity.dto';

@ApiTags('fleet')
@ApiBearerAuth()
@Controller('capacity')
export class CapacityController {
  constructor(private readonly capacity: CapacityService) {}

  @Get()
  @ApiOperation({
    operationId: 'getCapacity',
    summary: 'GPU capacity per model and region: total, allocated, free, and the largest count placeable on one host now',
  })
  @ApiOkResponse({ type: CapacityResponseDto })
  @ApiProblems(401)
  get(): Promise<CapacityResponseDto> {
    return this.capacity.gpuCapacity();
  }
}
