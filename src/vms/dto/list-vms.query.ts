import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsEnum, IsOptional, IsString, MaxLength } from 'class-validator';
import { NoControlCharacters } from '../../common/no-control-characters.decorator';
import { PageQueryDto } from '../../common/page-query.dto';
import { VmStatus } from '../vm.entity';

export class ListVmsQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ enum: VmStatus, enumName: 'VmStatus', description: 'Only VMs in this status; deleted VMs are listed only when asked for' })
  @IsOptional()
  @IsEnum(VmStatus)
  status?: VmStatus;

  @ApiPropertyOptional({ example: 'test', description: 'Only VMs carrying this label' })
  @IsOptional()
  @IsString()
  @MaxLength(63)
  @NoControlCharacters()
  label?: string;

}
